// Command tlogcheck verifies a Shuyu ledger with Go's golang.org/x/mod/sumdb packages.
//
// It is the independent half of the interoperability test (tests/ledger/test_go_interop.py):
// checkpoints are opened with note.Open and note.NewVerifier, inclusion proofs are checked with
// tlog.CheckRecord, consistency proofs with tlog.CheckTree, and the tree of all entries is rebuilt
// with tlog.StoredHashes and tlog.TreeHash. The checkpoint body (C2SP tlog-checkpoint) is parsed
// here because tlog.ParseTree accepts only the Go checksum database's origin. Ed25519
// cosignatures (C2SP tlog-cosignature, algorithm 0x04) are unknown to the note package, so
// note.Open must keep them as unverified signatures; they are then checked with crypto/ed25519.
//
// Input on stdin, one record after another:
//
//	vkey <log verifier key>
//	cosigner <witness verifier key, algorithm 0x04>       zero or more
//	checkpoint <n>\n<n bytes: the signed note>            one or more
//	entries <count>\n<count lines: base64 entry bytes>    optional, every entry from index 0
//	inclusion <size> <index> <count>\n<base64 entry>\n<count base64 hashes, one a line>
//	consistency <old> <new> <count>\n<count base64 hashes, one a line>
//
// Output: one line per checkpoint and a final "OK …" line; any failure prints "FAIL: …" and
// exits with status 1.
package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

type inclusion struct {
	size, index int64
	entry       []byte
	proof       tlog.RecordProof
}

type consistency struct {
	old, new int64
	proof    tlog.TreeProof
}

type input struct {
	vkey        string
	cosigners   []cosigner
	notes       [][]byte
	entries     [][]byte
	inclusions  []inclusion
	consistency []consistency
}

func main() {
	in, err := read(bufio.NewReader(os.Stdin))
	if err == nil {
		err = check(in, os.Stdout)
	}
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

// parseCheckpoint parses a C2SP tlog-checkpoint body: origin, decimal size, base64 root hash,
// then optional extension lines, each ending in a newline.
func parseCheckpoint(text string) (checkpoint, error) {
	var c checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return c, errors.New("checkpoint needs an origin, a size and a root")
	}
	if len(lines[1]) > 1 && lines[1][0] == '0' {
		return c, fmt.Errorf("checkpoint size %q has a leading zero", lines[1])
	}
	size, err := strconv.ParseUint(lines[1], 10, 63)
	if err != nil {
		return c, fmt.Errorf("checkpoint size %q: %v", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return c, fmt.Errorf("checkpoint root %q is not a base64 hash", lines[2])
	}
	c.origin, c.size = lines[0], int64(size)
	copy(c.root[:], root)
	return c, nil
}

// parseCosigner parses a verifier key <name>+<hex key ID>+base64(0x04 || Ed25519 public key).
func parseCosigner(vkey string) (cosigner, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return cosigner{}, fmt.Errorf("cosigner key %q is not name+id+key", vkey)
	}
	id, err1 := strconv.ParseUint(parts[1], 16, 32)
	raw, err2 := base64.StdEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return cosigner{}, fmt.Errorf("cosigner key %q is not an Ed25519 cosignature key", vkey)
	}
	c := cosigner{name: parts[0], hash: uint32(id), key: ed25519.PublicKey(raw[1:])}
	h := sha256.Sum256(append([]byte(c.name+"\n"), raw...))
	if binary.BigEndian.Uint32(h[:4]) != c.hash {
		return cosigner{}, fmt.Errorf("cosigner key %q: key ID does not match the key", vkey)
	}
	return c, nil
}

// verifyCosignature checks a tlog-cosignature v1 signature: u64 big-endian time, then an
// Ed25519 signature of "cosignature/v1\ntime <t>\n" followed by the checkpoint body.
func (c cosigner) verifyCosignature(text string, sig note.Signature) error {
	raw, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(raw) != 4+8+ed25519.SignatureSize {
		return fmt.Errorf("cosignature of %s has the wrong length", c.name)
	}
	t := binary.BigEndian.Uint64(raw[4:12])
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", t, text)
	if !ed25519.Verify(c.key, []byte(msg), raw[12:]) {
		return fmt.Errorf("invalid cosignature by %s", c.name)
	}
	return nil
}

func read(r *bufio.Reader) (*input, error) {
	in := &input{}
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return in, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading input: %v", err)
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil, errors.New("empty input line")
		}
		switch {
		case f[0] == "vkey" && len(f) == 2:
			in.vkey = f[1]
		case f[0] == "cosigner" && len(f) == 2:
			c, err := parseCosigner(f[1])
			if err != nil {
				return nil, err
			}
			in.cosigners = append(in.cosigners, c)
		case f[0] == "checkpoint" && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("bad checkpoint length %q", f[1])
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, fmt.Errorf("reading checkpoint: %v", err)
			}
			in.notes = append(in.notes, buf)
		case f[0] == "entries" && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return nil, fmt.Errorf("bad entry count %q", f[1])
			}
			if in.entries, err = readB64Lines(r, n); err != nil {
				return nil, err
			}
		case f[0] == "inclusion" && len(f) == 4:
			var p inclusion
			var n int
			if p.size, p.index, n, err = three(f[1:]); err != nil {
				return nil, err
			}
			lines, err := readB64Lines(r, n+1)
			if err != nil {
				return nil, err
			}
			p.entry = lines[0]
			if p.proof, err = hashes(lines[1:]); err != nil {
				return nil, err
			}
			in.inclusions = append(in.inclusions, p)
		case f[0] == "consistency" && len(f) == 4:
			var p consistency
			var n int
			if p.old, p.new, n, err = three(f[1:]); err != nil {
				return nil, err
			}
			lines, err := readB64Lines(r, n)
			if err != nil {
				return nil, err
			}
			if p.proof, err = hashes(lines); err != nil {
				return nil, err
			}
			in.consistency = append(in.consistency, p)
		default:
			return nil, fmt.Errorf("unknown input line %q", strings.TrimSpace(line))
		}
	}
}

func three(f []string) (int64, int64, int, error) {
	a, err1 := strconv.ParseInt(f[0], 10, 64)
	b, err2 := strconv.ParseInt(f[1], 10, 64)
	c, err3 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil || c < 0 {
		return 0, 0, 0, fmt.Errorf("bad numbers %q", f)
	}
	return a, b, c, nil
}

func readB64Lines(r *bufio.Reader, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading line %d of %d: %v", i+1, n, err)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return nil, fmt.Errorf("line %q is not base64", strings.TrimSpace(line))
		}
		out = append(out, b)
	}
	return out, nil
}

func hashes(lines [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(lines))
	for i, b := range lines {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is %d bytes", i, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func check(in *input, out io.Writer) error {
	verifier, err := note.NewVerifier(in.vkey)
	if err != nil {
		return fmt.Errorf("log key: %v", err)
	}
	roots := map[int64]tlog.Hash{}
	for _, msg := range in.notes {
		n, err := note.Open(msg, note.VerifierList(verifier))
		if err != nil {
			return fmt.Errorf("note.Open: %v", err)
		}
		c, err := parseCheckpoint(n.Text)
		if err != nil {
			return err
		}
		if c.origin != verifier.Name() {
			return fmt.Errorf("checkpoint origin %q is not the log key %q", c.origin, verifier.Name())
		}
		if old, ok := roots[c.size]; ok && old != c.root {
			return fmt.Errorf("two different signed roots for size %d: the log forked", c.size)
		}
		roots[c.size] = c.root
		var cosigned []string
		for _, sig := range n.UnverifiedSigs {
			for _, cs := range in.cosigners {
				if cs.name == sig.Name && cs.hash == sig.Hash {
					if err := cs.verifyCosignature(n.Text, sig); err != nil {
						return err
					}
					cosigned = append(cosigned, cs.name)
				}
			}
		}
		fmt.Fprintf(out, "checkpoint %d signed=%d unverified=%d cosigned=%s\n",
			c.size, len(n.Sigs), len(n.UnverifiedSigs), strings.Join(cosigned, ","))
	}
	if len(roots) == 0 {
		return errors.New("no checkpoint given")
	}
	if err := checkEntries(in.entries, roots); err != nil {
		return err
	}
	for _, p := range in.inclusions {
		root, ok := roots[p.size]
		if !ok {
			return fmt.Errorf("no signed checkpoint of size %d", p.size)
		}
		if err := tlog.CheckRecord(p.proof, p.size, root, p.index, tlog.RecordHash(p.entry)); err != nil {
			return fmt.Errorf("inclusion of %d in %d: %v", p.index, p.size, err)
		}
	}
	for _, p := range in.consistency {
		oldRoot, ok1 := roots[p.old]
		newRoot, ok2 := roots[p.new]
		if !ok1 || !ok2 {
			return fmt.Errorf("no signed checkpoints of sizes %d and %d", p.old, p.new)
		}
		if err := tlog.CheckTree(p.proof, p.new, newRoot, p.old, oldRoot); err != nil {
			return fmt.Errorf("consistency of %d with %d: %v", p.old, p.new, err)
		}
	}
	fmt.Fprintf(out, "OK checkpoints=%d entries=%d inclusion=%d consistency=%d\n",
		len(in.notes), len(in.entries), len(in.inclusions), len(in.consistency))
	return nil
}

// checkEntries rebuilds the tree from every entry with tlog.StoredHashes and compares
// tlog.TreeHash at every signed size the entries cover.
func checkEntries(entries [][]byte, roots map[int64]tlog.Hash) error {
	if len(entries) == 0 {
		return nil
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, data := range entries {
		hs, err := tlog.StoredHashes(int64(i), data, reader)
		if err != nil {
			return err
		}
		stored = append(stored, hs...)
	}
	sizes := make([]int64, 0, len(roots))
	for s := range roots {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, s := range sizes {
		if s > int64(len(entries)) {
			continue
		}
		h, err := tlog.TreeHash(s, reader)
		if err != nil {
			return err
		}
		if h != roots[s] {
			return fmt.Errorf("the entries give root %s at size %d, the checkpoint says %s", h, s, roots[s])
		}
	}
	return nil
}

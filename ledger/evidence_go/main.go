// Command evidencecheck verifies a Shuyu ledger evidence bundle (format shuyu-evidence/v1) with
// Go's golang.org/x/mod/sumdb packages, independently of the platform that made it.
//
// Usage: go run . '<log verifier key>' <unzipped bundle directory>
//
// The checkpoint is opened with note.Open and the log's key; its body (C2SP tlog-checkpoint) is
// parsed here because tlog.ParseTree accepts only the Go checksum database's origin. For every
// entry listed in manifest.json, the leaf hash tlog.RecordHash(entry bytes) is checked against
// the checkpoint's root with tlog.CheckRecord and the entry's c2sp.org/tlog-proof@v1 proof, which
// must name the same checkpoint. Prints "OK …" or "FAIL: …" (exit status 1).
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type manifest struct {
	Format   string `json:"format"`
	TreeSize int64  `json:"tree_size"`
	Entries  []struct {
		Index int64  `json:"index"`
		Entry string `json:"entry"`
		Proof string `json:"proof"`
	} `json:"entries"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Println("usage: evidencecheck '<log verifier key>' <bundle directory>")
		os.Exit(2)
	}
	msg, err := check(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	fmt.Println(msg)
}

// parseTree reads origin, size and root from a checkpoint body.
func parseTree(text string) (string, tlog.Tree, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return "", tlog.Tree{}, errors.New("checkpoint needs an origin, a size and a root")
	}
	if len(lines[1]) > 1 && lines[1][0] == '0' {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint size %q has a leading zero", lines[1])
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint size %q: %v", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return "", tlog.Tree{}, fmt.Errorf("checkpoint root %q is not a base64 hash", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], root)
	return lines[0], tree, nil
}

// parseProof reads a c2sp.org/tlog-proof@v1 bundle: index, hashes and its checkpoint note.
func parseProof(text string) (int64, tlog.RecordProof, string, error) {
	head, checkpoint, ok := strings.Cut(text, "\n\n")
	if !ok {
		return 0, nil, "", errors.New("tlog-proof has no empty line before its checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return 0, nil, "", errors.New("not a c2sp.org/tlog-proof@v1 bundle")
	}
	pos := 1
	if len(lines) > pos && strings.HasPrefix(lines[pos], "extra ") {
		pos++
	}
	if len(lines) <= pos || !strings.HasPrefix(lines[pos], "index ") {
		return 0, nil, "", errors.New("tlog-proof has no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[pos], "index "), 10, 64)
	if err != nil {
		return 0, nil, "", fmt.Errorf("tlog-proof index: %v", err)
	}
	var proof tlog.RecordProof
	for _, line := range lines[pos+1:] {
		h, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(h) != tlog.HashSize {
			return 0, nil, "", fmt.Errorf("tlog-proof hash %q is not base64 of 32 bytes", line)
		}
		var hash tlog.Hash
		copy(hash[:], h)
		proof = append(proof, hash)
	}
	return index, proof, checkpoint, nil
}

func check(vkey, dir string) (string, error) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return "", fmt.Errorf("log key: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		return "", err
	}
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return "", fmt.Errorf("checkpoint: %v", err)
	}
	origin, tree, err := parseTree(n.Text)
	if err != nil {
		return "", err
	}
	if origin != verifier.Name() {
		return "", fmt.Errorf("checkpoint origin %q is not the log %q", origin, verifier.Name())
	}
	var m manifest
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return "", fmt.Errorf("manifest.json: %v", err)
	}
	if m.Format != "shuyu-evidence/v1" || m.TreeSize != tree.N || len(m.Entries) == 0 {
		return "", errors.New("manifest.json does not describe this checkpoint's entries")
	}
	for _, e := range m.Entries {
		entry, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Entry)))
		if err != nil {
			return "", err
		}
		text, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Proof)))
		if err != nil {
			return "", err
		}
		index, proof, cp, err := parseProof(string(text))
		if err != nil {
			return "", fmt.Errorf("%s: %v", e.Proof, err)
		}
		pn, err := note.Open([]byte(cp), note.VerifierList(verifier))
		if err != nil || pn.Text != n.Text {
			return "", fmt.Errorf("%s is not for the bundle's checkpoint", e.Proof)
		}
		if index != e.Index {
			return "", fmt.Errorf("%s proves index %d, not %d", e.Proof, index, e.Index)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
			return "", fmt.Errorf("entry %d: %v", index, err)
		}
	}
	return fmt.Sprintf("OK %d entries in %s at size %d", len(m.Entries), origin, tree.N), nil
}

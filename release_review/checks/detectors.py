"""Scanning whole Arrow string arrays for Chinese personal and entity identifiers.

The formats and their check characters are in ``idformats.py``; this module finds the tokens to
classify and the tokens that need more than one ASCII word:

- Vehicle plates: province character, letter (no I/O), 5 characters (6 for new-energy plates).
- Landlines: area code 010, 02x or 0xxx with a separator or brackets, then 7–8 digits.
- Mobile numbers and bank cards written with separators (``+86 138 1234 5678``,
  ``6222 0212 3456 7890``) or in full-width digits.
- Gateway pseudonyms, plus any patterns the review service passes.

Terms: a *hit* is one identifier-like token in one cell, with a status ``VALID`` or ``NEAR``
(see ``idformats``). A *word* is a maximal run of ASCII word bytes (digits, letters, ``_``).

How it is fast: nothing is done per cell in Python unless a cell needs it.

1. A cell made of one ASCII word of 9–40 bytes is a token itself: its bytes are read straight
   from the array's data buffer into a column-major matrix per width (a column of IDs is one
   reshape) and classified there.
2. Other cells of 7 bytes or more go through a vectorized RE2 prefilter (could the cell hold an
   identifier?). The few candidates that hold separated or full-width digits, plates or
   landlines go through Python regular expressions; the others are split into words with numpy
   over their data buffer (a space appended to each cell so no word spans two cells), and the
   words of 9–40 bytes are classified like whole cells.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from release_review.checks.idformats import (
    KIND_LABELS, KIND_NAMES, MAX_TOKEN, MIN_TOKEN, NEAR, VALID, WIDTHS, Best, Kind, classify,
)

__all__ = ["KIND_LABELS", "KIND_NAMES", "NEAR", "VALID", "Hits", "Kind", "integers_as_text",
           "scan_strings", "scan_texts"]

PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# RE2 (vectorized, over cells that are not one ASCII word): could the cell hold an identifier?
PREFILTER = (r"\d{6}|[０-９]{6}|ps_[0-9a-f]{8}|[" + PLATE_PROVINCES + r"][A-HJ-NP-Z]"
             r"|[A-Z][0-9A-Z]?\d{7}|\d{3}[- ]\d{4}[- ]\d{4}|\d{4}[- ]\d{4}[- ]\d{4}|0\d{2,3}[-)]")
# RE2: candidates that need Python (separated or full-width digits, plates, landlines)
SLOW_PREFILTER = (r"\d[- ]\d|[０-９]|[" + PLATE_PROVINCES + r"][A-HJ-NP-Z]|0\d{2,3}-|\(0\d")
MIN_IMPURE = 7  # the shortest cell with other bytes that can hold an identifier (云A·12345)
EXAMPLE_TOKENS = 64
# Python, over candidate cells: tokens to classify
_B, _E = r"(?<![0-9A-Za-z_])", r"(?![0-9A-Za-z_])"
WORD_RE = re.compile(_B + r"[0-9A-Za-z_]{9,40}" + _E)
MOBILE_SEP_RE = re.compile(r"(?<!\d)(?:\+?86[ -]?|0086[ -]?)?1\d{2}[ -]?\d{4}[ -]?\d{4}(?!\d)")
CARD_SEP_RE = re.compile(r"(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?!\d)")
LANDLINE_RE = re.compile(r"(?<![\d-])(?:\(0(?:10|2\d|[3-9]\d{2})\)\s?|0(?:10|2\d|[3-9]\d{2})-)"
                         r"[2-9]\d{6,7}(?![\d-])")
PLATE_RE = re.compile("[" + PLATE_PROVINCES + r"][A-HJ-NP-Z][·•\-\s]?"
                      r"(?:[DF][A-HJ-NP-Z0-9]\d{4}|\d{5}[DF]|[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])"
                      r"(?![0-9A-Za-z])")
SEPARATORS = re.compile(r"[ \-+]")


@dataclass
class Hits:
    """Identifier-like tokens found in an array of cells (parallel arrays, one entry per hit).

    A hit whose token is the whole cell (the common case: a column of IDs) has no entry in
    ``tokens``; a token found inside longer text has its text there, by hit position (for the
    first ``EXAMPLE_TOKENS`` hits of each kind at least)."""

    cell: np.ndarray  # int64 index of the cell in the scanned array
    kind: np.ndarray  # int8 Kind
    status: np.ndarray  # int8 VALID or NEAR
    tokens: dict[int, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Hits:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.cell)

    @classmethod
    def concat(cls, parts: list[Hits]) -> Hits:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        tokens, base = {}, 0
        for p in parts:
            tokens.update({base + i: t for i, t in p.tokens.items()})
            base += len(p)
        return cls(np.concatenate([p.cell for p in parts]), np.concatenate([p.kind for p in parts]),
                   np.concatenate([p.status for p in parts]), tokens)

    def token(self, i: int, cells: pa.Array) -> str:
        """The text of hit `i` (`cells` is the array that was scanned)."""
        found = self.tokens.get(i)
        return found if found is not None else str(cells[int(self.cell[i])].as_py())


# --- bytes of string arrays ------------------------------------------------------------------


def _as_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr if arr.type == pa.string() else arr.cast(pa.string())


def _offsets_data(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a string array without copying, offsets (int64) rebased to data.

    Byte lengths of null slots are not defined: see ``_lengths``."""
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data_buffer = arr.buffers()[2]
    data = (np.frombuffer(data_buffer, np.uint8) if data_buffer is not None
            else np.zeros(0, np.uint8))
    base = int(offsets[0])
    return offsets.astype(np.int64) - base, data[base:int(offsets[-1])]


def _lengths(arr: pa.Array, offsets: np.ndarray) -> np.ndarray:
    """Byte length of every cell, 0 for nulls."""
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths[~_bools(arr.is_valid())] = 0
    return lengths


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), bool)


def _fixed(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The column-major (width, n) byte matrix of the tokens at `starts` (all `width` long,
    in order, not overlapping)."""
    n = len(starts)
    first = int(starts[0])
    if int(starts[-1]) - first == width * (n - 1):  # back to back: a column of equal widths
        block = data[first:first + width * n].reshape(n, width)
    else:
        block = sliding_window_view(data, width)[starts]
    return np.ascontiguousarray(block.T)


def classify_at(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Best:
    """Classify the tokens at byte positions `starts` of `data` (in order, not overlapping)."""
    best = Best(len(starts))
    counts = np.bincount(np.minimum(lengths, MAX_TOKEN + 1), minlength=MAX_TOKEN + 2)
    for width in sorted(WIDTHS):
        if width < len(counts) and counts[width]:
            sel = np.flatnonzero(lengths == width) if counts[width] < len(lengths) \
                else np.arange(len(lengths))
            classify(_fixed(data, starts[sel], width), sel, best)
    return best


# --- scanning arrays -------------------------------------------------------------------------


def scan_strings(arr: pa.Array, extra_patterns: list[re.Pattern] | None = None) -> Hits:
    """Every identifier-like token in a string array (nulls hold nothing)."""
    arr = _as_string(arr)
    if len(arr) == 0:
        return Hits.empty()
    offsets, data = _offsets_data(arr)
    lengths = _lengths(arr, offsets)
    long_enough = lengths >= MIN_IMPURE
    parts = []
    if long_enough.any():
        word = _bools(pc.ascii_is_alnum(arr))
        pseudonym_like = _bools(pc.starts_with(arr, "ps_"))
        if pseudonym_like.any():
            word |= pseudonym_like & _bools(pc.ascii_is_alnum(pc.utf8_slice_codeunits(arr, 3)))
        pure = np.flatnonzero(word & (lengths >= MIN_TOKEN) & (lengths <= MAX_TOKEN))
        if pure.size:
            best = classify_at(data, offsets[pure], lengths[pure])
            found = np.flatnonzero(best.kind >= 0)
            parts.append(Hits(pure[found], best.kind[found], best.status[found]))
        impure = np.flatnonzero(~word & long_enough)
        if impure.size:
            parts += _impure_hits(arr, impure)
    hits = Hits.concat(parts)
    if extra_patterns:
        hits = Hits.concat([hits, _pattern_hits(arr, extra_patterns)])
    return hits


def _take(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    return arr if len(idx) == len(arr) else arr.take(pa.array(idx))


def _impure_hits(arr: pa.Array, impure: np.ndarray) -> list[Hits]:
    """Hits in the cells at `impure` (text with other bytes than one ASCII word)."""
    parts = []
    cand = impure[_bools(pc.match_substring_regex(_take(arr, impure), PREFILTER))]
    if cand.size:
        texts = _take(arr, cand)
        slow = _bools(pc.match_substring_regex(texts, SLOW_PREFILTER))
        if slow.any():
            idx = np.flatnonzero(slow)
            parts.append(scan_texts(texts.take(pa.array(idx)).to_pylist(), cand[idx]))
        if not slow.all():
            idx = np.flatnonzero(~slow)
            parts.append(_word_hits(_take(texts, idx), cand[idx]))
    return parts


def _words(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte positions of every word in `data`, which ends with a non-word byte."""
    w = (data - np.uint8(48)) < 10  # comparisons vectorize; a table lookup does not
    w |= ((data | np.uint8(32)) - np.uint8(97)) < 26
    w |= data == ord("_")
    edges = np.flatnonzero(w[1:] != w[:-1]) + 1
    if len(w) and w[0]:
        edges = np.concatenate((np.zeros(1, np.int64), edges))
    return edges[0::2], edges[1::2]


def _word_hits(texts: pa.Array, cells: np.ndarray) -> Hits:
    """Tokens of text that needs no Python: its words, split with numpy, then the word
    classifier. Keeps the text of the first few hits of each kind for examples."""
    spaced = pc.binary_join_element_wise(texts, "", " ")  # text + " ": words end in their cell
    offsets, data = _offsets_data(spaced)
    starts, ends = _words(data)
    lengths = ends - starts
    keep = np.flatnonzero((lengths >= MIN_TOKEN) & (lengths <= MAX_TOKEN))
    if not keep.size:
        return Hits.empty()
    starts, ends = starts[keep], ends[keep]
    best = classify_at(data, starts, lengths[keep])
    found = np.flatnonzero(best.kind >= 0)
    if not found.size:
        return Hits.empty()
    owner = np.searchsorted(offsets, starts[found], side="right") - 1
    hits = Hits(cells[owner], best.kind[found], best.status[found])
    for kind in np.flatnonzero(np.bincount(hits.kind.astype(np.int64))):
        for i in np.flatnonzero(hits.kind == kind)[:EXAMPLE_TOKENS].tolist():
            j = int(found[i])
            hits.tokens[i] = data[starts[j]:ends[j]].tobytes().decode("ascii")
    return hits


def scan_texts(texts: list[str], cells: np.ndarray) -> Hits:
    """Tokens in free text (Python regular expressions, then the word classifier)."""
    cell_of: list[int] = []
    tokens: list[str] = []
    direct: list[tuple[int, Kind, str]] = []
    for cell, text in zip(cells.tolist(), texts):
        if not text:
            continue
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        seen: set[tuple[int, int]] = set()
        for rx in (WORD_RE, MOBILE_SEP_RE, CARD_SEP_RE):
            for mt in rx.finditer(text):
                if mt.span() not in seen:
                    seen.add(mt.span())
                    cell_of.append(cell)
                    tokens.append(mt.group())
        for mt in LANDLINE_RE.finditer(text):
            direct.append((cell, Kind.LANDLINE, mt.group()))
        if not text.isascii():
            for mt in PLATE_RE.finditer(text):
                direct.append((cell, Kind.PLATE, mt.group()))
    parts = [_classify_tokens(tokens, np.array(cell_of, np.int64))]
    if direct:
        parts.append(Hits(np.array([d[0] for d in direct], np.int64),
                          np.array([d[1] for d in direct], np.int8),
                          np.full(len(direct), VALID, np.int8),
                          {i: d[2] for i, d in enumerate(direct)}))
    return Hits.concat(parts)


def _classify_tokens(tokens: list[str], cells: np.ndarray) -> Hits:
    if not tokens:
        return Hits.empty()
    compact = pa.array([SEPARATORS.sub("", t) for t in tokens], pa.string())
    offsets, data = _offsets_data(compact)
    lengths = np.diff(offsets)
    ascii_word = _bools(pc.ascii_is_alnum(compact)) | np.array(
        [t.startswith("ps_") for t in tokens], bool)
    rows = np.flatnonzero(ascii_word & (lengths >= MIN_TOKEN) & (lengths <= MAX_TOKEN))
    if not rows.size:
        return Hits.empty()
    best = classify_at(data, offsets[rows], lengths[rows])
    found = np.flatnonzero(best.kind >= 0)
    return Hits(cells[rows[found]], best.kind[found], best.status[found],
                {j: tokens[i] for j, i in enumerate(rows[found].tolist())})


def _pattern_hits(arr: pa.Array, patterns: list[re.Pattern]) -> Hits:
    """Cells holding one of the review service's own pseudonym patterns (RE2, vectorized)."""
    parts = []
    for rx in patterns:
        idx = np.flatnonzero(_bools(pc.match_substring_regex(arr, rx.pattern)))
        if idx.size:
            texts = arr.take(pa.array(idx)).to_pylist()
            tokens = [m.group() if (m := rx.search(t)) else t for t in texts]
            parts.append(Hits(idx.astype(np.int64), np.full(idx.size, Kind.PSEUDONYM, np.int8),
                              np.full(idx.size, VALID, np.int8), dict(enumerate(tokens))))
    return Hits.concat(parts)


def integers_as_text(values: pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """Integer (or integral float) cells of 9 digits or more, as (cell indices, strings):
    identifiers stored as numbers (a CSV column of mobile numbers is read as int64)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_floating(arr.type):
        f = np.asarray(arr.to_numpy(zero_copy_only=False), np.float64)
        ok = np.isfinite(f) & (np.abs(f) >= 1e8) & (np.abs(f) < 9.2e18)
        ok &= np.floor(f) == f
        idx = np.flatnonzero(ok)
        ints = f[idx].astype(np.int64)
    elif pa.types.is_integer(arr.type):
        if pa.types.is_unsigned_integer(arr.type):
            v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.uint64)
            idx = np.flatnonzero((v >= 10**8) & (v < 2**63))
            ints = v[idx].astype(np.int64)
        else:
            v = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.int64)
            idx = np.flatnonzero(v >= 10**8)
            ints = v[idx]
    else:
        return None
    if not idx.size:
        return None
    return idx.astype(np.int64), pa.array(ints, pa.int64()).cast(pa.string())

"""Text in, token ids out: files, the built-in corpora, vocabularies and truncated-BPTT token streams.

    read_text / load_corpus  ->  Vocab.build, Vocab.encode  ->  split_train_val  ->  TokenStream

Legend: N tokens in a stream, B parallel streams (the batch), T time steps in a window,
L = N // B tokens per stream, V symbols in the vocabulary.
"""
from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from rnnvanish.errors import RnnvanishError

CORPORA_DIR = Path(__file__).resolve().parent.parent / "corpora"

_BOM = b"\xef\xbb\xbf"
# Control bytes that never occur in text (tab, newline, vertical tab, form feed, return are allowed).
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"
_BINARY_FRACTION = 0.3   # above this share of non-text bytes in the first 64 KiB, a file is binary


# ---- Files and corpora ------------------------------------------------------------------------

def read_text(path) -> str:
    """Read a UTF-8 text file; drop a UTF-8 byte-order mark and turn `\\r\\n` into `\\n`.

    Raises RnnvanishError (one sentence naming the path) for a missing file, a directory, an
    unreadable file, an empty or whitespace-only file, a binary file (NUL bytes, or more than 30%
    control or undecodable bytes) and a file that is not valid UTF-8 (with the byte offset).
    """
    p = Path(path)
    if not p.exists():
        raise RnnvanishError(f"text file {p} does not exist")
    if p.is_dir():
        raise RnnvanishError(f"{p} is a directory, not a text file")
    try:
        raw = p.read_bytes()
    except PermissionError:
        raise RnnvanishError(f"cannot read {p}: permission denied") from None
    except OSError as err:
        raise RnnvanishError(f"cannot read {p}: {err.strerror or err}") from None
    skipped = len(_BOM) if raw.startswith(_BOM) else 0
    raw = raw[skipped:]
    if not raw.strip():
        raise RnnvanishError(f"text file {p} is empty or contains only whitespace")
    if b"\x00" in raw:
        raise RnnvanishError(f"{p} looks like a binary file (it contains NUL bytes), not text")
    head = raw[:65536]
    n_control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        n_high = sum(1 for b in head if b >= 0x80)
        if (n_control + n_high) > _BINARY_FRACTION * len(head):
            raise RnnvanishError(f"{p} looks like a binary file (mostly non-text bytes), not text") from None
        raise RnnvanishError(
            f"{p} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start + skipped}); "
            f"convert it first, e.g. `iconv -f latin1 -t utf-8 {p} > {p.stem}.utf8.txt`") from None
    if n_control > _BINARY_FRACTION * len(head):
        raise RnnvanishError(f"{p} looks like a binary file (mostly control bytes), not text")
    if not text.strip():
        raise RnnvanishError(f"text file {p} is empty or contains only whitespace")
    return text.replace("\r\n", "\n")


def _project_corpora() -> dict[str, Path]:
    """The texts written for this project: `corpora/*.txt` by file stem, in sorted order."""
    if not CORPORA_DIR.is_dir():
        return {}
    return {f.stem: f for f in sorted(CORPORA_DIR.glob("*.txt")) if f.is_file()}


def _pydoc_text() -> str:
    """Python's bundled reference topics (`pydoc_data.topics`), joined in sorted key order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise RnnvanishError("this Python has no pydoc_data module; give a text file to train on") from None
    return "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"


def default_corpus() -> tuple[str, str]:
    """The corpus `rnnvanish train` uses when given no file: `(name, text)`, offline and deterministic.

    Text = every `corpora/*.txt` in sorted file-name order, then Python's `pydoc_data.topics` in
    sorted key order, joined by blank lines; name "default". The project's own texts come first so
    that a validation split taken from the end (`split_train_val`) falls inside the pydoc topics,
    the bulk of the text, and is drawn from the same kind of text as training. If `corpora/` is
    not beside the package (a non-editable install), the pydoc topics alone are used, named "pydoc".
    The pydoc topics change a little between Python versions, so this text does too.
    """
    files = _project_corpora()
    if not files:
        return "pydoc", _pydoc_text()
    parts = [read_text(f).strip("\n") for f in files.values()]
    return "default", "\n\n".join(parts) + "\n\n" + _pydoc_text()


def list_corpora() -> list[str]:
    """Names `load_corpus` accepts besides file paths: "default", "pydoc", then `corpora/` stems."""
    return ["default", "pydoc"] + [s for s in _project_corpora() if s not in ("default", "pydoc")]


def load_corpus(name_or_path) -> tuple[str, str]:
    """`(name, text)` for a built-in corpus name (see `list_corpora`) or a path to a UTF-8 file.

    An argument that names an existing file, or looks like a path (has a directory part or a suffix),
    is read as a file and named by its path; otherwise it must be a built-in name.
    """
    arg = os.fspath(name_or_path)
    p = Path(arg)
    if p.is_file() or p.suffix != "" or os.sep in arg or "/" in arg:
        return str(p), read_text(p)
    if arg == "default":
        return default_corpus()
    if arg == "pydoc":
        return "pydoc", _pydoc_text()
    files = _project_corpora()
    if arg in files:
        return arg, read_text(files[arg])
    raise RnnvanishError(f"there is no file and no built-in corpus named {arg!r} "
                         f"(built-in corpora: {', '.join(list_corpora())})")


# ---- Vocabulary -------------------------------------------------------------------------------

# Every character is a word character, whitespace or neither, so the pieces concatenate to the text.
_WORD_RE = re.compile(r"\w+|\s+|[^\w\s]")
_LEVELS = ("char", "word")
_POLICIES = ("error", "replace", "skip")


def tokenize(text: str, level: str) -> list[str]:
    """Characters (level "char") or words, single punctuation marks and whitespace runs ("word")."""
    return list(text) if level == "char" else _WORD_RE.findall(text)


class Vocab:
    """A fixed list of symbols (characters or word-level tokens); a symbol's id is its index.

    Character level: the sorted set of the corpus's characters; no unknown token unless asked
    (`add_unk=True`) or unless `max_size`/`min_count` dropped characters, in which case the
    unknown token is U+FFFD, a single character, so `decode` keeps one character per id.
    Word level: tokens from `tokenize`, most frequent first (ties in code-point order of the
    token); the unknown token `<unk>` is always present. When present the unknown token has id 0,
    and `max_size` counts it (`len(vocab) <= max_size`).

    Unknown-symbol policy of `encode`:
      "error"   raise RnnvanishError naming how many symbols are unknown and the first few;
      "replace" map each to the unknown token; a character vocabulary without one maps them to
                its most frequent character instead (`replacement_id`), usually the space;
      "skip"    drop them from the output.
    """

    CHAR_UNK = "\ufffd"
    WORD_UNK = "<unk>"

    def __init__(self, tokens, level: str, unk: str | None = None, replacement_id: int | None = None):
        tokens = tuple(tokens)
        if level not in _LEVELS:
            raise RnnvanishError(f"vocabulary level must be 'char' or 'word', got {level!r}")
        if not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise RnnvanishError("a vocabulary needs at least one symbol and every symbol must be a non-empty string")
        if len(set(tokens)) != len(tokens):
            raise RnnvanishError("a vocabulary must not list a symbol twice")
        if level == "char" and any(len(t) != 1 for t in tokens):
            raise RnnvanishError("every symbol of a character-level vocabulary must be one character")
        if level == "word" and unk is None:
            raise RnnvanishError("a word-level vocabulary must have an unknown token")
        if unk is not None and unk not in tokens:
            raise RnnvanishError(f"the unknown token {unk!r} is not in the vocabulary")
        self.level, self.tokens, self.unk = level, tokens, unk
        self._index = {t: i for i, t in enumerate(tokens)}
        self.unk_id = None if unk is None else self._index[unk]
        self.replacement_id = self.unk_id if replacement_id is None else int(replacement_id)
        if self.replacement_id is None or not 0 <= self.replacement_id < len(tokens):
            raise RnnvanishError("the vocabulary's replacement id is missing or out of range")
        if level == "char":
            # Sorted code points and their ids: encoding is a vectorised binary search.
            cps = np.array([ord(t) for t in tokens], dtype=np.int64)
            order = np.argsort(cps)
            self._cps, self._cp_ids = cps[order], order.astype(np.int64)

    @classmethod
    def build(cls, text: str, level: str = "char", max_size: int | None = None, min_count: int = 1,
              add_unk: bool | None = None) -> "Vocab":
        """The vocabulary of `text`: symbols seen at least `min_count` times, the `max_size` most frequent."""
        if level not in _LEVELS:
            raise RnnvanishError(f"vocabulary level must be 'char' or 'word', got {level!r}")
        if level == "word" and add_unk is False:
            raise RnnvanishError("a word-level vocabulary always has the unknown token <unk>")
        if max_size is not None and max_size < 1:
            raise RnnvanishError(f"the vocabulary size limit must be at least 1, got {max_size}")
        counts = Counter(tokenize(text, level))
        if not counts:
            raise RnnvanishError("cannot build a vocabulary from empty text")
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))   # most frequent first

        def keep(candidates, limit):
            kept = [t for t, c in candidates if c >= min_count]
            return kept if limit is None else kept[:limit]

        if add_unk is None:
            add_unk = level == "word" or len(keep(ranked, max_size)) < len(ranked)
        unk = (cls.WORD_UNK if level == "word" else cls.CHAR_UNK) if add_unk else None
        if add_unk:
            ranked = [(t, c) for t, c in ranked if t != unk]   # a U+FFFD in the text becomes the unk
        limit = None if max_size is None else max_size - int(add_unk)
        if limit is not None and limit < 1:
            raise RnnvanishError(f"a vocabulary size limit of {max_size} leaves no room beside the unknown token")
        kept = keep(ranked, limit)
        if not kept:
            raise RnnvanishError(f"no symbol occurs at least min_count={min_count} times")
        replacement = kept[0]                                   # the most frequent kept symbol
        ordered = sorted(kept) if level == "char" else kept
        tokens = ([unk] if add_unk else []) + ordered
        replacement_id = 0 if add_unk else tokens.index(replacement)
        return cls(tokens, level, unk, replacement_id)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, V={len(self)}, unk={self.unk!r})"

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        """Token ids of `text`, int64 of shape (N,); `unknown` is the policy for unknown symbols."""
        if unknown not in _POLICIES:
            raise RnnvanishError(f"unknown-symbol policy must be one of {', '.join(_POLICIES)}, got {unknown!r}")
        if self.level == "char":
            cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)
            pos = np.minimum(np.searchsorted(self._cps, cps), len(self._cps) - 1)
            known = self._cps[pos] == cps
            ids = np.where(known, self._cp_ids[pos], -1)
            symbols = None
        else:
            symbols = tokenize(text, "word")
            ids = np.fromiter((self._index.get(t, -1) for t in symbols), dtype=np.int64, count=len(symbols))
            known = ids >= 0
        if known.all():
            return ids
        if unknown == "replace":
            ids[~known] = self.replacement_id
            return ids
        if unknown == "skip":
            return ids[known]
        missing = [chr(c) for c in cps[~known]] if symbols is None else [s for s, k in zip(symbols, known) if not k]
        distinct = list(dict.fromkeys(missing))
        what = "characters" if self.level == "char" else "tokens"
        raise RnnvanishError(
            f"{len(missing)} of {len(ids)} {what} are not in the vocabulary ({len(distinct)} distinct, first "
            f"{', '.join(repr(s) for s in distinct[:5])}); choose the 'replace' or 'skip' policy for unknown symbols")

    def decode(self, ids) -> str:
        """The text of a sequence of ids: the concatenation of their symbols."""
        arr = np.asarray(ids)
        if arr.size == 0:
            return ""
        if not np.issubdtype(arr.dtype, np.integer):
            raise RnnvanishError(f"token ids must be integers, got an array of {arr.dtype}")
        flat = arr.ravel()
        bad = (flat < 0) | (flat >= len(self))
        if bad.any():
            raise RnnvanishError(f"token id {int(flat[bad][0])} is outside the vocabulary of {len(self)} symbols")
        return "".join(self.tokens[i] for i in flat.tolist())

    def to_dict(self) -> dict:
        """A JSON-able description; `Vocab.from_dict(v.to_dict()) == v`."""
        return {"level": self.level, "tokens": list(self.tokens), "unk": self.unk,
                "replacement_id": self.replacement_id}

    @classmethod
    def from_dict(cls, d) -> "Vocab":
        """The vocabulary described by `to_dict` (e.g. read back from a checkpoint)."""
        try:
            if not isinstance(d["tokens"], (list, tuple)):
                raise TypeError("tokens")
            return cls(d["tokens"], d["level"], d.get("unk"), d.get("replacement_id"))
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise RnnvanishError(f"the stored vocabulary is malformed (missing or bad field {err})") from None


# ---- Token streams for truncated BPTT ---------------------------------------------------------

def _as_ids(ids) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise RnnvanishError(f"token ids must be a 1-D integer array, got shape {arr.shape} of {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RnnvanishError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def split_train_val(ids, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """`(train, val)`: val is the last `round(N * val_frac)` tokens, train the rest (views, not copies)."""
    ids = _as_ids(ids)
    if not 0.0 <= val_frac < 1.0:
        raise RnnvanishError(f"the validation fraction must be in [0, 1), got {val_frac}")
    n_val = int(round(len(ids) * val_frac))
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]


class TokenStream:
    """B parallel streams through a token sequence, cut into windows of T steps (char-rnn style).

    The N ids are cut into B contiguous parts of L = N // B tokens (the last N mod B dropped);
    stream b is `ids[b*L:(b+1)*L]`. Window k of an epoch holds, for every stream, positions
    k*T .. k*T+T-1 as inputs and the next position as targets:

        inputs[t, b]  = stream_b[k*T + t]          # (T, B)
        targets[t, b] = stream_b[k*T + t + 1]      # (T, B)

    Window k+1 continues where window k stopped, so the hidden state after window k is the right
    initial state for window k+1. An epoch is the `windows_per_epoch = (L - 1) // T` full windows
    (the last (L - 1) mod T inputs of each stream are not visited); then the streams wrap to their
    start, and `new_epoch` is True for the window that starts them (including the very first):
    reset the carried state to h_0 before using it. `position` is where the next window starts in
    every stream, `epoch` the epoch (from 0) of the latest window.
    """

    def __init__(self, ids, batch: int, window: int):
        ids = np.ascontiguousarray(_as_ids(ids))
        B, T = _positive_int(batch, "batch"), _positive_int(window, "window")
        N, L = len(ids), len(ids) // B
        if L < T + 1:
            raise RnnvanishError(f"the text is too short for batch {B} and window {T}: it needs at least "
                                 f"B*(T+1) = {B * (T + 1)} tokens and has {N}")
        self.batch, self.window, self.n_tokens, self.stream_len = B, T, N, L
        self.windows_per_epoch = (L - 1) // T
        self._streams = ids[:B * L].reshape(B, L)                # (B, L), row b is stream b
        self._crc32 = zlib.crc32(ids.tobytes())   # resume only on the very same tokens
        self.position = 0    # offset in every stream where the next window starts
        self.epoch = 0       # epoch (from 0) of the latest window

    def next_window(self) -> tuple[np.ndarray, np.ndarray, bool]:
        """`(inputs, targets, new_epoch)`: the next (T, B) int64 window of every stream."""
        T = self.window
        if self.position + T + 1 > self.stream_len:
            self.position, self.epoch = 0, self.epoch + 1
        p = self.position
        inputs = np.ascontiguousarray(self._streams[:, p:p + T].T)           # (T, B)
        targets = np.ascontiguousarray(self._streams[:, p + 1:p + T + 1].T)  # (T, B)
        self.position = p + T
        return inputs, targets, p == 0

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where this stream is (JSON-able)."""
        return {"position": self.position, "epoch": self.epoch, "batch": self.batch,
                "window": self.window, "n_tokens": self.n_tokens, "crc32": self._crc32}

    def load_state_dict(self, state) -> None:
        """Continue from `state_dict()`; the token ids, batch and window must be the same."""
        try:
            saved = {k: int(state[k]) for k in ("position", "epoch", "batch", "window", "n_tokens", "crc32")}
        except (KeyError, TypeError, ValueError) as err:
            raise RnnvanishError(f"the saved data position is malformed (missing or bad field {err})") from None
        now = {"batch": self.batch, "window": self.window, "n_tokens": self.n_tokens, "crc32": self._crc32}
        if any(saved[k] != v for k, v in now.items()):
            raise RnnvanishError(
                f"the saved data position belongs to other data (batch {saved['batch']}, window {saved['window']}, "
                f"{saved['n_tokens']} tokens, checksum {saved['crc32']:08x}); this run has batch {self.batch}, "
                f"window {self.window}, {self.n_tokens} tokens, checksum {self._crc32:08x}")
        p = saved["position"]
        if p < 0 or p % self.window or p > self.windows_per_epoch * self.window or saved["epoch"] < 0:
            raise RnnvanishError(f"the saved data position {p} (epoch {saved['epoch']}) is not a window boundary")
        self.position, self.epoch = p, saved["epoch"]


def eval_windows(ids, batch: int, window: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every window of a validation stream once: `(inputs, targets)` of shape (T', B), T' <= T.

    Same layout as `TokenStream` (so a hidden state may be carried from window to window), but
    the last window may be shorter, so every one of the B*(L-1) targets is scored exactly once.
    An empty stream yields nothing; a non-empty one needs at least 2 tokens per stream.
    """
    ids = _as_ids(ids)
    B, T = _positive_int(batch, "batch"), _positive_int(window, "window")
    L = len(ids) // B
    if len(ids) and L < 2:
        raise RnnvanishError(f"the validation text is too short for batch {B}: it needs at least "
                             f"2*B = {2 * B} tokens and has {len(ids)}")
    # Checked above, iterated below: a bad stream is reported at the call, not at the first window.
    return _windows(ids[:B * L].reshape(B, L), T) if len(ids) else iter(())


def _windows(streams, T):
    L = streams.shape[1]
    for p in range(0, L - 1, T):
        n = min(T, L - 1 - p)
        yield (np.ascontiguousarray(streams[:, p:p + n].T),           # (T', B)
               np.ascontiguousarray(streams[:, p + 1:p + n + 1].T))   # (T', B)

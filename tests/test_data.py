"""Tests of rnnvanish.data: file checks, built-in corpora, vocabularies and token streams.

Expected values are computed independently here (plain Python slicing and counting), never
copied from a run of the code under test.
"""
import json
import os
from collections import Counter

import numpy as np
import pytest

from rnnvanish import data
from rnnvanish.data import (TokenStream, Vocab, default_corpus, eval_windows, list_corpora,
                            load_corpus, read_text, split_train_val)
from rnnvanish.errors import RnnvanishError

TEXT = "The cat sat on the mat.\nThe dog, however, did not!  It's late.\n\n\tDone?"


def assert_same(actual, expected):
    """Integer arrays equal; on failure show the first entries and the first mismatch."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    bad = np.flatnonzero(actual.ravel() != expected.ravel())
    assert bad.size == 0, (f"{bad.size} entries differ, first at flat index {bad[0]}: "
                           f"got {actual.ravel()[:8]}..., expected {expected.ravel()[:8]}..., "
                           f"largest difference {np.abs(actual.astype(float) - expected).max()}")


# ---------------------------------------------------------------------------------------------
# read_text
# ---------------------------------------------------------------------------------------------

def _raises_naming(path, *words):
    with pytest.raises(RnnvanishError) as info:
        read_text(path)
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    return message


def test_missing_file(tmp_path):
    _raises_naming(tmp_path / "nope.txt", "does not exist")


def test_directory(tmp_path):
    _raises_naming(tmp_path, "directory")


def test_empty_and_whitespace_only(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    _raises_naming(empty, "empty")
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b" \n\t\r\n  \n")
    _raises_naming(blank)
    bom_only = tmp_path / "bom.txt"
    bom_only.write_bytes(b"\xef\xbb\xbf\n")
    _raises_naming(bom_only)


def test_nul_bytes_are_binary(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello\x00world")
    _raises_naming(path, "binary")


def test_mostly_non_text_bytes_are_binary(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 256, size=4000, dtype=np.uint8).tobytes()   # no NUL, but noise
    path = tmp_path / "noise.dat"
    path.write_bytes(raw)
    _raises_naming(path, "binary")


def test_latin1_names_offset_and_iconv(tmp_path):
    raw = "caf\u00e9 au lait".encode("latin-1")
    path = tmp_path / "latin.txt"
    path.write_bytes(raw)
    message = _raises_naming(path, "UTF-8", "iconv")
    assert f"offset {raw.index(0xE9)}" in message and "0xe9" in message, message
    # With a BOM the offset still counts bytes of the file as stored.
    path.write_bytes(b"\xef\xbb\xbf" + raw)
    message = _raises_naming(path)
    assert f"offset {3 + raw.index(0xE9)}" in message, message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("hidden")
    path.chmod(0)
    try:
        _raises_naming(path, "permission")
    finally:
        path.chmod(0o600)


def test_unreadable_reported_even_as_root(tmp_path, monkeypatch):
    path = tmp_path / "locked.txt"
    path.write_text("hidden")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", refuse)
    _raises_naming(path, "permission denied")


def test_bom_and_crlf(tmp_path):
    path = tmp_path / "win.txt"
    path.write_bytes(b"\xef\xbb\xbfline one\r\nline \xc3\xa9 two\r\n")
    assert read_text(path) == "line one\nline \u00e9 two\n"


# ---------------------------------------------------------------------------------------------
# Corpora
# ---------------------------------------------------------------------------------------------

def test_default_corpus_deterministic_and_complete():
    name, text = default_corpus()
    name2, text2 = default_corpus()
    assert name == name2 == "default" and text == text2
    files = sorted(data.CORPORA_DIR.glob("*.txt"))
    assert files, "the project's corpora/ directory has no texts"
    first = files[0].read_text(encoding="utf-8").strip("\n")
    assert text.startswith(first)
    from pydoc_data.topics import topics
    last_topic = topics[max(topics)].strip("\n")
    assert text.rstrip("\n").endswith(last_topic)
    for f in files:
        assert f.read_text(encoding="utf-8").strip("\n") in text, f.name


def test_project_corpora_size_and_encoding():
    files = sorted(data.CORPORA_DIR.glob("*.txt"))
    total = sum(f.stat().st_size for f in files)
    assert 60_000 <= total <= 150_000, total
    for f in files:
        read_text(f)    # raises on any encoding problem


def test_default_corpus_without_corpora_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "CORPORA_DIR", tmp_path / "absent")
    name, text = default_corpus()
    assert name == "pydoc" and text == load_corpus("pydoc")[1] and len(text) > 100_000
    assert list_corpora() == ["default", "pydoc"]


def test_load_corpus_names_and_paths(tmp_path):
    names = list_corpora()
    assert names[:2] == ["default", "pydoc"]
    stems = [f.stem for f in sorted(data.CORPORA_DIR.glob("*.txt"))]
    assert names[2:] == stems
    for stem in stems:
        assert load_corpus(stem) == (stem, read_text(data.CORPORA_DIR / f"{stem}.txt"))
    assert load_corpus("default") == default_corpus()
    path = tmp_path / "mine.txt"
    path.write_text("my own words\n", encoding="utf-8")
    assert load_corpus(path) == (str(path), "my own words\n")
    with pytest.raises(RnnvanishError, match="no built-in corpus named 'nonesuch'"):
        load_corpus("nonesuch")
    with pytest.raises(RnnvanishError, match="does not exist"):
        load_corpus(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------------
# Vocab
# ---------------------------------------------------------------------------------------------

def test_char_vocab_is_sorted_set_and_round_trips():
    v = Vocab.build(TEXT)
    assert v.level == "char" and v.unk is None
    assert list(v.tokens) == sorted(set(TEXT)) and len(v) == len(set(TEXT))
    ids = v.encode(TEXT)
    assert ids.dtype == np.int64
    assert_same(ids, [sorted(set(TEXT)).index(c) for c in TEXT])
    assert v.decode(ids) == TEXT
    assert v.decode([]) == ""


def test_word_vocab_round_trip_keeps_punctuation_and_whitespace():
    v = Vocab.build(TEXT, level="word")
    assert v.unk == "<unk>" and v.unk_id == 0
    for token in [",", "!", "'", "  ", "\n\n\t", "cat", "The", "the"]:
        assert token in v, token
    ids = v.encode(TEXT)
    assert v.decode(ids) == TEXT
    assert v.tokens[ids[0]] == "The" and v.tokens[ids[1]] == " "
    assert 0 not in ids.tolist()     # every token of the build text is known


def test_word_order_is_frequency_then_token():
    text = "b d b c a b a"   # d and c tie and d comes first: the token order must decide
    v = Vocab.build(text, level="word")
    counts = Counter(data.tokenize(text, "word"))
    expected = sorted(counts, key=lambda t: (-counts[t], t))
    assert list(v.tokens) == ["<unk>"] + expected


def test_unknown_policies_word():
    v = Vocab.build("one two three two", level="word")
    text = "two four five four!"
    with pytest.raises(RnnvanishError) as info:
        v.encode(text)
    message = str(info.value)
    assert "'four'" in message and "'five'" in message and "'!'" in message and message.startswith("4 of")
    replaced = v.encode(text, unknown="replace")
    expected = [v.tokens.index(t) if t in v else v.unk_id for t in data.tokenize(text, "word")]
    assert_same(replaced, expected)
    skipped = v.encode(text, unknown="skip")
    assert v.decode(skipped) == "two   "
    with pytest.raises(RnnvanishError, match="policy"):
        v.encode(text, unknown="ignore")


def test_unknown_policies_char_without_unk_uses_most_frequent():
    text = "aab bbb cc"
    v = Vocab.build(text)
    assert v.unk is None
    most_frequent = max(sorted(set(text)), key=Counter(text).__getitem__)
    with pytest.raises(RnnvanishError, match="2 of 5 characters .*'z', '\u2192'"):
        v.encode("az\u2192ba")
    assert v.decode(v.encode("az\u2192ba", unknown="replace")) == "a" + 2 * most_frequent + "ba"
    assert v.decode(v.encode("az\u2192ba", unknown="skip")) == "aba"


def test_char_unk_when_asked_or_when_symbols_dropped():
    text = "aaaa bbb cc d"
    v = Vocab.build(text, add_unk=True)
    assert v.unk == Vocab.CHAR_UNK and v.unk_id == 0 and list(v.tokens[1:]) == sorted(set(text))
    assert v.decode(v.encode("ax", unknown="replace")) == "a" + Vocab.CHAR_UNK
    capped = Vocab.build(text, max_size=3)      # unk + the two most frequent: 'a' and ' '
    assert list(capped.tokens) == [Vocab.CHAR_UNK, " ", "a"]
    assert capped.decode(capped.encode(text, unknown="replace")) == "".join(
        c if c in "a " else Vocab.CHAR_UNK for c in text)
    rare = Vocab.build(text, min_count=3)
    assert list(rare.tokens) == [Vocab.CHAR_UNK, " ", "a", "b"]


def test_max_size_keeps_most_frequent_words():
    rng = np.random.default_rng(1)
    words = [f"w{k}" for k in range(30)]
    text = " ".join(rng.choice(words, size=400, p=np.arange(30, 0, -1) / 465))
    counts = Counter(data.tokenize(text, "word"))
    v = Vocab.build(text, level="word", max_size=10)
    assert len(v) == 10 and v.tokens[0] == "<unk>"
    kept = set(v.tokens[1:])
    dropped = set(counts) - kept
    assert min(counts[t] for t in kept) >= max(counts[t] for t in dropped)
    ids = v.encode(text, unknown="replace")
    assert_same(ids, [v.tokens.index(t) if t in kept else 0 for t in data.tokenize(text, "word")])
    assert Vocab.build(text, level="word", max_size=10) == v      # ties broken the same way
    with pytest.raises(RnnvanishError):
        Vocab.build(text, level="word", max_size=1)


@pytest.mark.parametrize("level", ["char", "word"])
def test_to_dict_round_trip_through_json(level):
    text = TEXT + " na\u00efve \u2014 \u65e5\u672c \U0001F600"
    v = Vocab.build(text, level=level, max_size=12 if level == "word" else None)
    back = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert back == v and back.tokens == v.tokens and back.unk == v.unk
    assert back.replacement_id == v.replacement_id
    assert_same(back.encode(text, unknown="replace"), v.encode(text, unknown="replace"))


def test_from_dict_rejects_malformed():
    good = Vocab.build("abc").to_dict()
    for broken in [{}, {**good, "level": "byte"}, {**good, "tokens": ["a", "a"]},
                   {**good, "tokens": ["ab", "c"]}, {**good, "unk": "q"},
                   {**good, "tokens": "abc"}, {"level": "word", "tokens": ["x"], "unk": None}, None]:
        with pytest.raises(RnnvanishError):
            Vocab.from_dict(broken)


def test_decode_rejects_out_of_range():
    v = Vocab.build("abc")
    with pytest.raises(RnnvanishError, match="outside"):
        v.decode([0, 3])


# ---------------------------------------------------------------------------------------------
# Splits and streams
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, frac", [(100, 0.1), (101, 0.25), (10, 0.37), (7, 0.0), (10, 0.5), (1, 0.3)])
def test_split_train_val(n, frac):
    ids = np.arange(n) * 3
    train, val = split_train_val(ids, frac)
    assert_same(np.concatenate([train, val]), ids)
    assert abs(len(val) - n * frac) <= 0.5 and len(train) >= 1
    if frac == 0:
        assert len(val) == 0
    with pytest.raises(RnnvanishError):
        split_train_val(ids, 1.0)


def _expected_window(ids, B, T, k):
    """Window k (within an epoch) from plain slicing of the B contiguous streams."""
    L = len(ids) // B
    streams = [list(ids[b * L:(b + 1) * L]) for b in range(B)]
    inputs = [[streams[b][k * T + t] for b in range(B)] for t in range(T)]
    targets = [[streams[b][k * T + t + 1] for b in range(B)] for t in range(T)]
    return np.array(inputs), np.array(targets)


@pytest.mark.parametrize("N, B, T", [(103, 3, 5), (50, 1, 7), (24, 2, 11), (9, 4, 1)])
def test_windows_are_slices_and_wrap(N, B, T):
    rng = np.random.default_rng(N)
    ids = rng.integers(0, 50, size=N)
    s = TokenStream(ids, batch=B, window=T)
    per_epoch = (N // B - 1) // T
    assert s.windows_per_epoch == per_epoch
    previous = None
    for step in range(2 * per_epoch + 2):
        inputs, targets, new_epoch = s.next_window()
        assert inputs.shape == targets.shape == (T, B) and inputs.dtype == targets.dtype == np.int64
        k = step % per_epoch
        exp_inputs, exp_targets = _expected_window(ids, B, T, k)
        assert_same(inputs, exp_inputs)
        assert_same(targets, exp_targets)
        assert new_epoch == (k == 0)
        assert s.epoch == step // per_epoch
        if previous is not None and k > 0:
            assert_same(inputs[0], previous[-1])      # each stream continues where it stopped
        previous = targets


def test_state_round_trip_continues_identically():
    ids = np.random.default_rng(3).integers(0, 20, size=97)
    a = TokenStream(ids, 2, 6)
    for _ in range(9):     # past one wrap: 7 windows per epoch
        a.next_window()
    state = json.loads(json.dumps(a.state_dict()))
    b = TokenStream(ids.copy(), 2, 6)
    b.load_state_dict(state)
    assert (b.position, b.epoch) == (a.position, a.epoch)
    for _ in range(12):
        xa, ya, ea = a.next_window()
        xb, yb, eb = b.next_window()
        assert_same(xb, xa)
        assert_same(yb, ya)
        assert ea == eb and a.epoch == b.epoch
    other = ids.copy()
    other[5] += 1
    for stream in [TokenStream(other, 2, 6), TokenStream(ids, 2, 5), TokenStream(ids, 3, 6)]:
        with pytest.raises(RnnvanishError, match="other data"):
            stream.load_state_dict(state)
    with pytest.raises(RnnvanishError, match="window boundary"):
        TokenStream(ids, 2, 6).load_state_dict({**state, "position": 7})


def test_too_short_names_needed_and_got():
    with pytest.raises(RnnvanishError) as info:
        TokenStream(np.arange(20), batch=4, window=5)    # needs 4 * (5 + 1) = 24
    assert "24" in str(info.value) and "20" in str(info.value)
    TokenStream(np.arange(24), batch=4, window=5)        # exactly enough
    for bad in [dict(batch=0, window=3), dict(batch=2, window=0), dict(batch=2.5, window=3)]:
        with pytest.raises(RnnvanishError):
            TokenStream(np.arange(100), **bad)


@pytest.mark.parametrize("N, B, T", [(50, 3, 4), (21, 1, 5), (8, 4, 10), (0, 2, 3)])
def test_eval_windows_cover_every_target_once(N, B, T):
    ids = np.random.default_rng(7).integers(0, 9, size=N)
    windows = list(eval_windows(ids, B, T))
    if N == 0:
        assert windows == []
        return
    assert all(x.shape == y.shape and x.shape[1] == B and 1 <= x.shape[0] <= T for x, y in windows)
    inputs = np.concatenate([x for x, _ in windows])        # (L-1, B)
    targets = np.concatenate([y for _, y in windows])
    L = N // B
    for b in range(B):
        stream = ids[b * L:(b + 1) * L]
        assert_same(inputs[:, b], stream[:-1])
        assert_same(targets[:, b], stream[1:])
    with pytest.raises(RnnvanishError, match="too short"):
        eval_windows(np.arange(3), 2, 4)


def test_end_to_end_on_default_corpus():
    _, text = default_corpus()
    v = Vocab.build(text)
    train, val = split_train_val(v.encode(text), 0.1)
    x, y, new_epoch = TokenStream(train, 8, 32).next_window()
    assert new_epoch and v.decode(x[:, 0]) + v.decode(y[-1:, 0]) == text[:33]
    assert sum(y.size for _, y in eval_windows(val, 4, 64)) == 4 * (len(val) // 4 - 1)

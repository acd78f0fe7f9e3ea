"""Exact (question, answer) text ids from string sketches: collisions never merge different texts."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from gdo.text import exact_pair_ids, string_sketch


def _same_partition(ids, keys):
    ref = {}
    want = np.array([ref.setdefault(k, len(ref)) for k in keys])
    pairs = set(zip(want.tolist(), ids.tolist()))
    return len(pairs) == len(ref) == len(set(ids.tolist()))


def test_forced_sketch_collisions_stay_apart():
    # equal length and equal start / middle / end windows, different bytes 8..15: same sketch
    a = "S" * 8 + "x" * 8 + "M" * 8 + "y" * 8 + "E" * 8
    b = "S" * 8 + "z" * 8 + "M" * 8 + "y" * 8 + "E" * 8
    assert len(a) == len(b) == 40 and a != b
    sk = string_sketch(pa.array([a, b]))
    assert sk[0] == sk[1]
    ids = exact_pair_ids(pa.array([a, b, a, b, a]), pa.array(["q", "q", "q", "q", "r"]))
    assert ids[0] == ids[2] and ids[1] == ids[3]
    assert len({ids[0], ids[1], ids[4]}) == 3


def test_random_texts_nulls_slices_and_unicode():
    rnd = random.Random(7)
    base = ["", "a", "ab", "abcdefgh", "abcdefghi", "x" * 16, "x" * 17, "x" * 16 + "y", "y" + "x" * 16, "é", "éé",
            "日本語のテキスト", None]
    pool = base + ["".join(rnd.choice("ab ") for _ in range(rnd.randint(0, 40))) for _ in range(1500)]
    qs = [rnd.choice(pool) for _ in range(4000)]
    ans = [rnd.choice(pool[:60]) for _ in range(4000)]
    ids = exact_pair_ids(pa.array(qs), pa.array(ans))
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 2 * len(qs)
    assert _same_partition(ids, [(q or "", x or "") for q, x in zip(qs, ans)])
    # sliced / chunked / large_string inputs give the same partition
    q2 = pa.chunked_array([pa.array(["zz"] + qs[:2000]).slice(1), pa.array(qs[2000:])])
    for q in (q2, pa.array(qs, pa.large_string())):
        assert _same_partition(exact_pair_ids(q, pa.array(ans)), [(q or "", x or "") for q, x in zip(qs, ans)])
    assert string_sketch(pa.array(["zz", "abc", "abcdefghijklmnopqrs"]).slice(1)).tolist() == \
        string_sketch(pa.array(["abc", "abcdefghijklmnopqrs"])).tolist()
    assert exact_pair_ids(pa.array([], pa.string()), pa.array([], pa.string())).size == 0


def test_tokenize_threads_and_chunks_do_not_change_results(monkeypatch):
    import gdo.text as T

    rnd = random.Random(3)
    words = ["the", "The", "cat", "sat", "on", "a", "mat", "x" * 20, "éte", "día", "_", "42"]
    texts = [" ".join(rnd.choice(words) for _ in range(rnd.randint(0, 30))) for _ in range(3000)] + [None, ""]
    monkeypatch.setattr(T, "_THREADS", 1)
    ref = T.tokenize(texts, hashes=True, distinct=True)
    ref_b = T.tokenize(texts, distinct=True, need_below=0.55)
    monkeypatch.setattr(T, "_CHUNK_STRINGS", 97)  # many chunks
    monkeypatch.setattr(T, "_THREADS", 2)
    got = T.tokenize(texts, hashes=True, distinct=True)
    got_b = T.tokenize(texts, distinct=True, need_below=0.55)
    for a, b in ((ref, got), (ref_b, got_b)):
        assert np.array_equal(a.counts, b.counts) and np.array_equal(a.distinct, b.distinct)
        assert np.array_equal(a.parent, b.parent) and np.array_equal(a.hashes, b.hashes)
    assert ref.counts.sum() > 20000 and (ref_b.distinct < 0.55 * ref_b.counts).any()

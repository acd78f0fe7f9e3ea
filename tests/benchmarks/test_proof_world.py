"""The proof benchmark's generator (benchmarks/proof): answers agree with the pixels, the pool has
the requested make-up and distinct texts, so gdo's exact-text dedup only removes real duplicates."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

PROOF = Path(__file__).resolve().parents[2] / "benchmarks" / "proof"
sys.path.insert(0, str(PROOF))
world = pytest.importorskip("world")
pool = pytest.importorskip("pool")


def _name(rgb) -> str:
    return next(n for n, c in world.COLOURS.items() if tuple(int(x) for x in rgb) == c)


def _shape_colour(frame: np.ndarray) -> str:
    """The colour covering SHAPE*SHAPE pixels (the background covers the rest), read from the pixels."""
    cols, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    return _name(cols[np.argmin(counts)])


def test_goal_answers_match_the_frames():
    rng = np.random.default_rng(3)
    for _ in range(50):
        s = world.make_goal(rng)
        first, final = _shape_colour(s.frames[0]), _shape_colour(s.frames[-1])
        assert first != final  # the colour changes
        assert s.answer == (first if s.meta["which"] == "first" else final)
        assert s.question.endswith(world.Q_FIRST if s.meta["which"] == "first" else world.Q_FINAL)


def test_static_and_noise():
    rng = np.random.default_rng(4)
    for _ in range(50):
        s = world.make_static(rng, video=True, moving=True)
        truth = _shape_colour(s.frames[0]) if s.question.endswith(world.Q_SHAPE) else _name(s.frames[0][0, 0])
        assert s.answer == truth
        assert len({_shape_colour(f) for f in s.frames}) == 1  # motion, no change of colour
        assert world.add_noise(rng, s).answer != truth


def test_pool_make_up(tmp_path):
    counts = pool.make_pool(tmp_path, n=500, seed=1)
    truth = [json.loads(x) for x in open(tmp_path / "truth.jsonl")]
    assert len(truth) == 500 == sum(counts.values())
    assert sum(t["kind"] == "goal" and not t["dup"] for t in truth) == 20  # 4% (duplicates come on top)
    assert sum(t["dup"] for t in truth) == 50  # 10%
    assert 0.15 < sum(not t["clean"] for t in truth) / 500 < 0.25  # about 20% noisy answers
    texts = Counter((t["question"], t["answer"]) for t in truth)
    # distinct texts except the planted duplicates (a rare tag collision at most)
    assert sum(c - 1 for c in texts.values()) <= 50 + 2
    rows = [json.loads(x) for x in open(tmp_path / "pool_videos.jsonl")]
    assert all(len(r["images"]) == world.CLIP_FRAMES for r in rows)
    assert all((tmp_path / p).exists() for r in rows[:20] for p in r["images"])


def test_clip_reference_is_one_word_outside_the_model_vocabulary():
    """Question texts differ for gdo's exact-text dedup, but the tiny model's word-level tokenizer reads
    every clip reference as the same tokens (``Clip [UNK] .``), and the judge sees the case-folded
    question in words it knows."""
    rng = np.random.default_rng(5)
    tags = {world.tag(rng) for _ in range(200)}
    assert len(tags) > 195
    vocab = set(world.vocabulary([]))
    for t in list(tags)[:20]:
        words = t.split()
        assert words[0] == "Clip" and words[2] == "." and words[1] not in vocab
    q = world.make_goal(rng).question
    assert all(w in vocab for w in world.judge_question(q).replace("?", " ?").split()[2:])


def test_multi_picture_pretraining_names_one_picture_by_place():
    """Pretraining's ``multi`` samples: 2-4 different stills, the answer is the shape colour of the
    picture the question names (read from its pixels), and nothing changes inside a picture; the
    goal's words ("first", "finally") never occur in them."""
    rng = np.random.default_rng(6)
    seen = Counter()
    for _ in range(60):
        s = world.make_multi(rng)
        k = s.meta["asked"]
        assert 2 <= s.frames.shape[0] == s.meta["pictures"] <= 4 and 1 <= k <= s.frames.shape[0]
        assert s.question.endswith(world.Q_PICTURE.format(k=k))
        assert s.answer == _shape_colour(s.frames[k - 1])
        assert "first" not in s.question and "finally" not in s.question
        seen[k] += 1
    assert set(seen) == {1, 2, 3, 4}
    share = np.mean([world.pretraining_sample(rng, "{question}").kind == "multi" for _ in range(2000)])
    assert abs(share - world.MULTI_SHARE) < 0.03
    assert all(w in world.vocabulary([]) for w in world.Q_PICTURE.format(k=3).split())

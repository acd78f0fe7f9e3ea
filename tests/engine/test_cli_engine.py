"""`gdo profile --engine/--dry-run` (issue 17): without Ray the local engine works and --engine ray
says how to install it; the dry-run estimate counts what a run would do, from the pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo_pool"

_NO_RAY = ("import sys; sys.modules['ray'] = None; sys.modules['ray.data'] = None; "
           "from gdo.cli import main; sys.argv = ['gdo'] + sys.argv[1:]; main()")


def _gdo_without_ray(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_RAY, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_without_ray_local_works_and_ray_says_how_to_install(real_data, tmp_path):
    pool = real_data / "hiyouga__LLaMA-Factory/data/mllm_video_demo.json"
    r = _gdo_without_ray("profile", str(pool), "--out", str(tmp_path / "r"), "--engine", "ray", "--no-progress",
                         "--media-root", str(pool.parent))
    assert r.returncode == 2 and "pip install 'gdo[ray]'" in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "r" / "descriptors.parquet").exists()
    r = _gdo_without_ray("profile", str(pool), "--out", str(tmp_path / "l"), "--no-progress", "--media-root",
                         str(pool.parent), "--text-encoder", "hashing", "--descriptors", "fields,motion")
    assert r.returncode == 0, r.stderr[-2000:]
    t = pq.read_table(tmp_path / "l" / "descriptors.parquet")
    assert t.num_rows >= 3 and all(v is not None for v in t.column("amm").to_pylist())


def test_bad_engine_options_are_clear_errors(tmp_path):
    r = _gdo_without_ray("profile", str(DEMO / "llava_video.jsonl"), "--out", str(tmp_path), "--engine", "spark")
    assert r.returncode == 2 and "engine must be one of" in r.stderr
    r = _gdo_without_ray("profile", str(DEMO / "llava_video.jsonl"), "--out", str(tmp_path), "--devices", "0")
    assert r.returncode == 2 and "needs engine='ray'" in r.stderr


def test_dry_run_counts_demo_pool(tiny_model, tmp_path):
    """Counts against an independent ingest of the demo pool; prompt tokens measured by the tiny
    model's processor; nothing is profiled or written."""
    from gdo.models.hf import load_processor, normalise_question
    from gdo.pool.ingest import ingest

    files = sorted(str(p) for p in DEMO.iterdir() if p.suffix in (".json", ".jsonl"))
    out = tmp_path / "o"
    r = _gdo_without_ray("profile", *files, "--out", str(out), "--dry-run", "--json", "--model", str(tiny_model),
                         "--model-size", "8", "--gpu", "h100", "--gpus", "8")
    assert r.returncode == 0, r.stderr[-2000:]
    e = json.loads(r.stdout)
    assert not (out / "descriptors.parquet").exists() and not (out / ".gdo" / "shards").exists()
    cands = ingest(files).candidates
    kinds = cands.column("media_kind").to_pylist()
    vkeys = {v for v, k in zip(cands.column("video_key").to_pylist(), kinds) if k in ("video", "frames")}
    assert e["counts"]["candidates"] == cands.num_rows == 34
    assert e["counts"]["distinct_videos"] == len(vkeys)
    assert e["counts"]["video_candidates"] == sum(k in ("video", "frames") for k in kinds)
    n = cands.num_rows
    assert e["model_calls"]["loss_video"] == e["model_calls"]["loss_blind"] == n
    assert e["model_calls"]["sc_samples"] == 5 * n
    assert e["model_calls"]["judge"] == len({normalise_question(q) for q in cands.column("question").to_pylist()})  # ASCII pool: lower == casefold
    p = e["prompt_tokens"]
    proc = load_processor(tiny_model)
    q0, a0 = cands.column("question")[0].as_py(), cands.column("answer")[0].as_py()
    txt = proc.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": q0}]},
                                    {"role": "assistant", "content": [{"type": "text", "text": a0}]}], tokenize=False)
    assert p["sample"] == n and p["text_tokens_mean"] >= 1 and p["visual_tokens_per_frame"] > 0
    assert len(proc.tokenizer(txt)["input_ids"]) > 0
    g = e["gpu_hours"]
    assert g["gpus"] == 8 and g["model"] > 0 and g["wall_h_on_gpus"] == pytest.approx(g["model"] / 8)
    assert e["estimate"] is True  # GPU figures rest on data-sheet estimates
    assert all("source" in t for t in e["throughput"].values())

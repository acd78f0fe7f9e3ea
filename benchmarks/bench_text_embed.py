#!/usr/bin/env python
"""Text-embedding throughput (all-MiniLM-L6-v2, batch 64, one torch thread) on the demo pool's
questions + answers repeated to ``--n`` texts: one JSON line (candidates/s/core). The figure
feeds ``gdo.engine.cost.THROUGHPUT["text/minilm"]``.

    PYTHONPATH=src python benchmarks/bench_text_embed.py [--n 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from gdo.descriptors.embeddings import text_embeddings, text_inputs
    from gdo.pool.ingest import ingest

    files = sorted(str(p) for p in (REPO / "examples" / "demo_pool").iterdir() if p.suffix in (".json", ".jsonl"))
    c = ingest(files, probe_media=False, media_columns=False).candidates
    texts = text_inputs(c.column("question").to_pylist(), c.column("answer").to_pylist())
    texts = [f"{texts[i % len(texts)]} #{i}" for i in range(a.n)]
    text_embeddings(texts[:64], batch_size=64)  # load the model
    t0 = time.perf_counter()
    text_embeddings(texts, batch_size=64)
    dt = time.perf_counter() - t0
    print(json.dumps({"encoder": "minilm", "texts": a.n, "seconds": round(dt, 2),
                      "candidates_per_s_per_core": round(a.n / dt, 1), "torch_threads": 1,
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()

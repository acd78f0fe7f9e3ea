"""`make demo`: run `gdo run` on the embedded real pool with a tiny offline model.

1. builds a tiny random Qwen2-VL model into DEMO_OUT/tiny_model (offline, < 1 s, in a child process),
2. runs ``gdo run`` on the five pool files of ``examples/demo_pool/`` (four input formats, image
   QA, video-file QA and frame-list QA; sources in ``examples/ATTRIBUTION.md``) with
   ``--model DEMO_OUT/tiny_model --export swift --export llamafactory --export llava``,
3. leaves subset.jsonl, baseline.jsonl, selection.jsonl, report.json, report.html and the
   trainer exports in DEMO_OUT (default ``demo_out/``).

Usage: python examples/run_demo.py [--out demo_out] [--preset temp_plus] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
POOL = HERE / "demo_pool"
POOL_FILES = [
    "llamafactory_image_qa.json",   # LLaMA-Factory / ShareGPT messages, multi-turn image QA
    "openai_content.jsonl",         # OpenAI-style content lists (text duplicates of the above)
    "llava_image_captions.json",    # LLaVA JSON, image captions
    "llamafactory_video_qa.json",   # LLaMA-Factory video QA (mp4, avi)
    "llava_video.jsonl",            # LLaVA-Video JSONL: video files and frame lists
]

TINY_MODEL_WARNING = """\
NOTE: this demo used a TINY RANDOMLY INITIALISED model ({model}).
Its model descriptors (vds, ppl, sc, tnc_judge, loss_video, loss_blind) are computed for real
but are MEANINGLESS: they only show that every stage runs end to end. The media and text
descriptors (motion, frame diversity, lexical TNC, clusters, duplicates) are real.
For meaningful scores point --model at a real checkpoint on a GPU machine, e.g.:

  huggingface-cli download Qwen/Qwen3-VL-8B-Instruct --local-dir out/ckpt/Qwen3-VL-8B-Instruct
  gdo run my_pool.jsonl --preset temp_plus --model out/ckpt/Qwen3-VL-8B-Instruct --out out/my_run

The demo pool has {n} candidates, far below the presets' min_count (12,000+) and too small for their
max_ratio (1.4-1.8% of the pool): the auto budget would fall back to the non-empty rule (1 candidate),
so the demo fixes it with --budget 12 (or use --preset target, sized for small pools).
The subset shows the mechanics, not the paper's gains (see report.html).
"""


def main(argv: list[str] | None = None) -> int:
    """Build the tiny model, run `gdo run` on the demo pool, print where everything is."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "demo_out", help="output folder (default demo_out/)")
    ap.add_argument("--preset", default="temp_plus", help="goal preset (default temp_plus)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--budget", default="12", help="subset size (default 12; 'auto' gives 0 on a pool this small)")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    t0 = time.perf_counter()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    # Built in a child process: building it here left torch/transformers state in this process that
    # made the profile's model stage several times slower than the same `gdo run` from the shell.
    model_dir = out / "tiny_model"
    subprocess.run([sys.executable, "-m", "gdo", "tiny-model", str(model_dir), "--seed", "0", "--no-check"],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"[demo] built the tiny offline model in {model_dir}", file=sys.stderr)

    cmd = ["run", *[str(POOL / f) for f in POOL_FILES], "--preset", args.preset, "--model", str(model_dir),
           "--out", str(out), "--workers", str(args.workers), "--budget", str(args.budget),
           "--export", "swift", "--export", "llamafactory", "--export", "llava"]
    print("[demo] gdo " + " ".join(os.path.relpath(c, Path.cwd()) if c.startswith("/") else c for c in cmd),
          file=sys.stderr)
    from gdo.cli import app

    try:
        rc = app(cmd, standalone_mode=False)
        if isinstance(rc, int) and rc:
            return rc
    except SystemExit as e:  # typer.Exit from the command
        if e.code:
            return int(e.code)
    import pyarrow.parquet as pq

    n = pq.read_metadata(out / "candidates.parquet").num_rows
    missing = [f for f in ("subset.jsonl", "baseline.jsonl", "selection.jsonl", "report.json", "report.html")
               if not (out / f).exists()]
    print()
    print(TINY_MODEL_WARNING.format(model=model_dir, n=n))
    import json

    try:
        model_s = json.loads((out / "timings.json").read_text(encoding="utf-8"))["profile"]["model"]
        print(f"[demo] model stage: {model_s:.1f} s")
    except (OSError, KeyError, TypeError, ValueError):
        pass
    print(f"[demo] finished in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'} in a browser.")
    if missing:
        print(f"[demo] ERROR: missing output file(s): {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Run the same gdo commands with two gdo source trees and say which output files are byte-identical.

Issue 11's done-when: on the demo pool and on a generated 100k pool, ``subset.jsonl``,
``baseline.jsonl``, ``selection.jsonl`` and ``report.json`` are byte-identical before and after a
change, except for differences an issue asks for. Each case runs once per tree, in the same work
folder and into the same relative output folder (renamed afterwards), so every path that an output
records is the same for both trees; pool and descriptor paths are absolute.

Cases:

* ``demo_run``: ``gdo run`` on the five files of examples/demo_pool (as examples/run_demo.py, but
  without the model stage unless ``--with-model``; ``--budget 12``, no thumbnails).
* ``demo_select``: ``gdo select`` on the same files without descriptors (``--budget 12``).
* ``pool100k_{default,paper}``: ``gdo select`` on a generated 100k pool (benchmarks/make_pool.py,
  cached in ``--pools-dir``) with its descriptors.parquet, preset temp_plus, auto budget.

A tree is a folder holding ``src/gdo`` (or the ``src`` folder itself), or a git revision of this
repository (extracted with ``git archive``). Each run is ``python -c 'from gdo.cli import main; main()'``
with ``PYTHONPATH`` set to that tree's ``src``.

Prints one JSON line per case and file: ``{"case", "file", "identical", ...}``; for a report.json
that differs, ``keys`` lists the top-level keys whose values differ; then a summary line.

Usage::

    python benchmarks/compare_runs.py --old /work/old --new .
    python benchmarks/compare_runs.py --old main --new HEAD --cases demo_run,pool100k_default
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEMO = REPO / "examples" / "demo_pool"
DEMO_FILES = ["llamafactory_image_qa.json", "openai_content.jsonl", "llava_image_captions.json",
              "llamafactory_video_qa.json", "llava_video.jsonl"]
FILES = ("subset.jsonl", "baseline.jsonl", "selection.jsonl", "report.json")
CASES = ("demo_run", "demo_select", "pool100k_default", "pool100k_paper")


def tree_src(spec: str, scratch: Path) -> Path:
    """The ``src`` folder of a tree given as a folder or a git revision of this repository."""
    p = Path(spec)
    if p.is_dir():
        p = p.resolve()
        if (p / "src" / "gdo").is_dir():
            return p / "src"
        if (p / "gdo").is_dir():
            return p
        raise SystemExit(f"{spec}: no src/gdo inside")
    dst = scratch / f"rev_{spec.replace('/', '_')}"
    if not dst.exists():
        data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", spec, "src"], check=True,
                              capture_output=True).stdout
        dst.mkdir(parents=True)
        tar_path = dst / "src.tar"
        tar_path.write_bytes(data)
        with tarfile.open(tar_path) as t:
            t.extractall(dst, filter="data")
        tar_path.unlink()
    return dst / "src"


def _gdo(src: Path, args: list[str], cwd: Path) -> tuple[int, str, float]:
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", "from gdo.cli import main; main()", *args], cwd=cwd, env=env,
                       capture_output=True, text=True)
    return p.returncode, (p.stdout + p.stderr)[-2000:], time.perf_counter() - t


def case_args(case: str, pools_dir: Path, model: Path | None) -> list[str]:
    """The gdo command line of a case (outputs go to ``out``)."""
    demo = [str(DEMO / f) for f in DEMO_FILES]
    if case == "demo_run":
        return ["run", *demo, "--out", "out", "--preset", "temp_plus", "--budget", "12", "--no-thumbnails",
                "--quiet", *(["--model", str(model)] if model else [])]
    if case == "demo_select":
        return ["select", *demo, "--out", "out", "--preset", "temp_plus", "--budget", "12"]
    if case.startswith("pool100k_"):
        mode = case.split("_", 1)[1]
        pool = ensure_pool(pools_dir)
        return ["select", str(pool / "llava_onevision.jsonl"), str(pool / "llava_video.jsonl"), "--descriptors",
                str(pool / "descriptors.parquet"), "--out", "out", "--preset", "temp_plus", "--mode", mode]
    raise SystemExit(f"unknown case {case!r}; choose from {CASES}")


def ensure_pool(pools_dir: Path, n: int = 100_000, seed: int = 0) -> Path:
    """A generated pool of ``n`` candidates with descriptors.parquet (benchmarks/make_pool.py), cached."""
    d = pools_dir / f"n{n}_s{seed}"
    if not (d / "descriptors.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "make_pool.py"), "--n", str(n), "--out", str(d), "--seed",
                        str(seed), "--forms", "parquet", "--quiet"], check=True)
    return d


def compare(a: Path, b: Path) -> dict:
    """``identical`` for one file of two run folders; for JSON objects the top-level keys that differ."""
    if not a.exists() or not b.exists():
        return {"identical": False, "missing": [str(p) for p in (a, b) if not p.exists()]}
    ba, bb = a.read_bytes(), b.read_bytes()
    out: dict = {"identical": ba == bb, "bytes": [len(ba), len(bb)]}
    if ba != bb and a.suffix == ".json":
        ja, jb = json.loads(ba), json.loads(bb)
        out["keys"] = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
        for k in out["keys"]:
            if isinstance(ja.get(k), dict) and isinstance(jb.get(k), dict):
                out.setdefault("subkeys", {})[k] = sorted(s for s in set(ja[k]) | set(jb[k])
                                                          if ja[k].get(s) != jb[k].get(s))
    elif ba != bb and a.suffix == ".jsonl":
        la, lb = ba.splitlines(), bb.splitlines()
        out["lines"] = [len(la), len(lb)]
        out["lines_differing"] = sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="old tree: folder (with src/gdo) or git revision")
    ap.add_argument("--new", default=str(REPO), help="new tree: folder or git revision (default: this checkout)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list of {','.join(CASES)}")
    ap.add_argument("--pools-dir", type=Path, default=HERE / "_pools", help="cache of generated pools")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    ap.add_argument("--with-model", action="store_true", help="demo_run with the tiny offline model (as run_demo.py)")
    a = ap.parse_args(argv)
    scratch = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="gdo_compare_"))
    scratch.mkdir(parents=True, exist_ok=True)
    trees = {"old": tree_src(a.old, scratch), "new": tree_src(a.new, scratch)}
    model = None
    if a.with_model:
        model = scratch / "tiny_model"
        if not model.exists():
            rc, log, _ = _gdo(trees["new"], ["tiny-model", str(model)], scratch)
            if rc:
                raise SystemExit(f"tiny-model failed:\n{log}")
    n_same = n_all = 0
    try:
        for case in [c.strip() for c in a.cases.split(",") if c.strip()]:
            args = case_args(case, a.pools_dir, model)
            w = scratch / case
            w.mkdir(exist_ok=True)
            secs = {}
            for side, src in trees.items():
                shutil.rmtree(w / "out", ignore_errors=True)
                shutil.rmtree(w / side, ignore_errors=True)
                rc, log, secs[side] = _gdo(src, args, w)
                if rc:
                    print(json.dumps({"case": case, "tree": side, "error": rc, "log": log}), flush=True)
                (w / "out").rename(w / side) if (w / "out").exists() else (w / side).mkdir()
            for f in FILES:
                r = compare(w / "old" / f, w / "new" / f)
                n_all += 1
                n_same += bool(r["identical"])
                print(json.dumps({"case": case, "file": f, **r}), flush=True)
            print(json.dumps({"case": case, "seconds": {k: round(v, 2) for k, v in secs.items()}}), flush=True)
    finally:
        if a.work is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"summary": {"identical": n_same, "compared": n_all, "old": str(trees["old"]),
                                  "new": str(trees["new"])}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

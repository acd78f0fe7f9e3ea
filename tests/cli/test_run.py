"""`gdo run` end to end on a slice of the real demo pool (no model: fast), plus argument errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gdo.cli import app
from gdo.pool.ingest import ingest
from gdo.run import _parse_budget, run

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
FILES = [str(POOL / "llava_image_captions.json"), str(POOL / "llamafactory_video_qa.json"),
         str(POOL / "llava_video.jsonl")]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    res = CliRunner().invoke(app, ["run", *FILES, "--preset", "temp", "--out", str(out), "--budget", "6",
                                   "--export", "swift,llava", "--export", "llamafactory"])
    return out, res


def test_cli_run_writes_every_file(cli_run):
    out, res = cli_run
    assert res.exit_code == 0, res.output
    for f in ("candidates.parquet", "rejects.jsonl", "ingest.json", "descriptors.parquet", "subset.jsonl",
              "baseline.jsonl", "selection.jsonl", "report.json", "report.html", "scores.parquet",
              "exports/subset.swift.jsonl", "exports/subset.llamafactory.json", "exports/subset.llava.json",
              "exports/baseline.swift.jsonl", "exports/dataset_info.json"):
        assert (out / f).exists(), f
    # summary on stdout
    assert "subset     : 6" in res.output and "report.html" in res.output


def test_cli_run_outputs_agree(cli_run):
    out, _ = cli_run
    sel = [json.loads(x) for x in (out / "selection.jsonl").read_text().splitlines()]
    subset = [s["uid"] for s in sel if s["set"] == "gdo"]
    assert len(subset) == 6 == len(set(subset))
    rj = json.loads((out / "report.json").read_text())
    assert rj["budget"]["n"] == 6 and rj["budget"]["mode"] == "fixed"
    # exported subset == selected subset, candidate for candidate
    swift = [json.loads(x) for f in ("subset.swift.jsonl",)
             if (out / "exports" / f).exists() for x in (out / "exports" / f).read_text().splitlines()]
    llava = json.loads((out / "exports" / "subset.llava.json").read_text())
    assert sorted(r["id"] for r in llava) == sorted(subset)
    assert len(swift) == 6
    # subset.jsonl rows re-ingest to the chosen candidates' questions/answers
    back = ingest([str(out / "subset.jsonl")], probe_media=False).candidates  # paths stay as written
    pool = ingest(FILES).candidates
    chosen = {u: (q, a) for u, q, a in zip(pool.column("uid").to_pylist(), pool.column("question").to_pylist(),
                                          pool.column("answer").to_pylist()) if u in set(subset)}
    assert sorted(zip(back.column("question").to_pylist(), back.column("answer").to_pylist())) == sorted(chosen.values())
    html = (out / "report.html").read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    # a fixed budget is reported as such, not as an auto budget capped by the pool
    assert "Budget fixed by --budget" in html and "Budget capped by the pool" not in html
    from gdo.report.html import iter_img_sources

    imgs = list(iter_img_sources(html))
    assert all(s.startswith("data:image/") for s in imgs)
    # score distributions (from report.json), descriptor histograms, field shares
    assert sum(s.startswith("data:image/png") for s in imgs) == 3
    assert sum(s.startswith("data:image/jpeg") for s in imgs) >= 6


def test_auto_budget_on_tiny_pool_succeeds_and_explains(tmp_path):
    out = tmp_path / "auto"
    r = run(FILES[:2], out, preset="minloss", descriptors=["fields"], progress=False)
    assert r.n_candidates == 6
    assert r.report_json["budget"]["mode"] == "auto"
    assert len(r.subset_uids) == r.report_json["budget"]["n"]  # 0 here: 6 x max_ratio < 1
    html = (out / "report.html").read_text()
    assert "Budget capped by the pool" in html
    if not r.subset_uids:
        assert "--budget N" in r.summary and "subset is empty" in html


@pytest.mark.parametrize("bad", ["-3", "many", "1.5", -1])
def test_bad_budget(bad):
    with pytest.raises(ValueError, match="budget"):
        _parse_budget(bad)
    assert _parse_budget("auto") is None and _parse_budget("12") == 12 and _parse_budget(7) == 7
    assert _parse_budget("0") == 0  # accepted as by gdo select: an empty subset


def test_cli_errors_are_clear(tmp_path):
    r = CliRunner().invoke(app, ["run", FILES[0], "--out", str(tmp_path / "x"), "--export", "alpaca"])
    assert r.exit_code == 2 and "unknown export format" in r.output
    r = CliRunner().invoke(app, ["run", FILES[0], "--out", str(tmp_path / "x"), "--preset", "fastest"])
    assert r.exit_code == 2 and "unknown preset" in r.output
    assert not (tmp_path / "x").exists()  # nothing written before the arguments are checked
    r = CliRunner().invoke(app, ["run", FILES[0], "--out", str(tmp_path / "x"), "--model", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "never downloads" in r.output
    r = CliRunner().invoke(app, ["run", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "not found" in r.output
    r = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "report.json" in r.output


def test_rerun_into_same_folder_removes_stale_exports(tmp_path):
    """Exports of an earlier run describe another subset: a second run into the same --out must not
    leave them beside its own."""
    out = tmp_path / "r"
    kw = dict(preset="temp", budget=4, descriptors=["fields"], thumbnails=False, progress=False)
    first = run(FILES[:1], out, exports=["swift"], **kw)
    assert any(p.name.startswith("subset.swift") for p in first.exports)
    second = run(FILES[:1], out, exports=["llava"], **kw)
    names = sorted(p.name for p in (out / "exports").iterdir())
    assert names == sorted(p.name for p in second.exports)
    assert not any("swift" in n for n in names) and "subset.llava.json" in names

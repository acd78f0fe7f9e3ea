"""report.html: self-contained (data: URIs only), escaped, with plots, thumbnails and constraint status."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gdo.descriptors import fields as F
from gdo.pool.ingest import ingest, write_ingest
from gdo.report import build_report, run_summary
from gdo.report.html import iter_img_sources

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
EVIL = "<script>alert('x')</script> what is <b>this</b>?"


def _make_run(tmp: Path, *, min_count: int = 16000) -> tuple[Path, list[str]]:
    """A run folder from the real demo pool (+ one row with markup in its question)."""
    evil = tmp / "evil.json"
    evil.write_text(json.dumps([{"messages": [{"role": "user", "content": "<image>" + EVIL},
                                              {"role": "assistant", "content": "A bus & a <i>street</i>."}],
                                 "images": [str(POOL / "media/data_juicer/img2.jpg")]}]))
    run = tmp / "run"
    res = ingest([str(POOL / "llamafactory_video_qa.json"), str(POOL / "llava_video.jsonl"),
                  str(POOL / "llamafactory_image_qa.json"), str(evil)])
    write_ingest(res, run)
    c = res.candidates
    q, a = c.column("question").to_pylist(), c.column("answer").to_pylist()
    desc = pa.table({
        "uid": c.column("uid"),
        "question_form": F.question_form(q), "q_len_bucket": F.q_len_bucket(q), "a_len_bucket": F.a_len_bucket(a),
        "duration_bucket": F.duration_bucket(c.column("n_frames").to_numpy(zero_copy_only=False)),
        "temporal_category": F.temporal_category(c.column("bucket").to_pylist(), q),
        "source_group": F.source_group(c.column("data_source").to_pylist()),
        "tnc": F.lexical_tnc(q),
        "n_frames": c.column("n_frames"), "duration_s": c.column("duration_s"),
        "vds": pa.nulls(c.num_rows, pa.float64()),
    })
    pq.write_table(desc, run / "descriptors.parquet")
    uids = c.column("uid").to_pylist()
    pos = c.column("pool_pos").to_pylist()
    chosen = [u for i, u in enumerate(uids) if i % 2 == 0 or i == len(uids) - 1]  # incl. the markup row
    with open(run / "selection.jsonl", "w") as f:
        for u, p in zip(uids, pos):
            if u in chosen:
                f.write(json.dumps({"uid": u, "set": "gdo", "score": 1.0 / (1 + p), "stage": "quota"}) + "\n")
        for u in uids[1::3]:
            f.write(json.dumps({"uid": u, "set": "baseline", "score": None, "stage": "baseline"}) + "\n")
    (run / "report.json").write_text(json.dumps({
        "preset": "temp_plus", "mode": "default",
        "budget": {"mode": "auto", "N": len(uids), "n_min_count": min_count, "n_max_ratio": 0, "n": len(chosen)},
        "constraints": [{"name": "min_video", "required": 9, "achieved": 4, "met": False},
                        {"name": "max_video", "required": 11, "achieved": 4, "met": True}],
    }))
    return run, chosen


def _imgs(html: str) -> list[str]:
    return list(iter_img_sources(html))


def test_self_contained_with_plots_and_thumbnails(tmp_path):
    run, chosen = _make_run(tmp_path)
    out = build_report(run, n_examples=3)
    html = out.read_text(encoding="utf-8")
    assert out == run / "report.html"
    # no network resource anywhere: no http(s) in src/href, no external script/style
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    # one inline script (table sort/filter), no external script, no fetch of anything
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and scripts[0][0].strip() == ""
    assert not re.search(r"fetch\(|XMLHttpRequest|import\(|https?:", scripts[0][1])
    assert "<link" not in html
    from PIL import Image

    imgs = _imgs(html)
    assert all(s.startswith("data:image/") for s in imgs)
    pngs = [s for s in imgs if s.startswith("data:image/png;base64,")]
    jpgs = [s for s in imgs if s.startswith("data:image/jpeg;base64,")]
    assert len(pngs) == 2  # descriptor histograms + field distributions
    strips = [s for s in jpgs if Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).height == 96]
    assert len(strips) == 6  # 3 top + 3 bottom candidates, all with media
    assert len(jpgs) - len(strips) == html.count('<img alt="" src="data:image/jpeg')  # table thumbnails

    for s in imgs:
        im = Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1])))
        im.load()
        assert im.width >= 20 and im.height >= 40
    for s in jpgs:
        assert Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).height in (40, 96)


def test_content_escaped_and_constraints(tmp_path):
    run, chosen = _make_run(tmp_path)
    html = build_report(run, n_examples=40).read_text(encoding="utf-8")
    assert EVIL not in html and "&lt;script&gt;alert(" in html
    assert "&lt;i&gt;street&lt;/i&gt;" in html
    assert re.search(r'class="bad">no<', html) and re.search(r'class="ok">yes<', html)
    assert "Budget capped by the pool" in html
    assert f">{len(chosen)}</div><div class=\"k\">GDO subset" in html
    assert "Not computed for this run" in html and "<code>vds</code>" in html
    # all chosen candidates are shown (top half + bottom half) with their real questions
    assert "Why is this video funny?" in html


def test_no_budget_note_when_pool_is_big_enough(tmp_path):
    run, _ = _make_run(tmp_path, min_count=5)
    assert "Budget capped by the pool" not in build_report(run).read_text(encoding="utf-8")


def test_without_thumbnails_and_without_descriptors(tmp_path):
    run, _ = _make_run(tmp_path)
    (run / "descriptors.parquet").unlink()
    html = build_report(run, thumbnails=False, n_examples=2).read_text(encoding="utf-8")
    imgs = _imgs(html)
    assert len(imgs) == 2 and all(s.startswith("data:image/png") for s in imgs)
    assert "thumbnails disabled" in html


def test_missing_inputs_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="report.json"):
        build_report(tmp_path)
    run, _ = _make_run(tmp_path)
    (run / "selection.jsonl").write_text('{"uid": "x", "set": "gdo"}\nnot json\n')
    with pytest.raises(ValueError, match=r"selection.jsonl:2"):
        build_report(run)


def test_run_summary(tmp_path):
    run, chosen = _make_run(tmp_path)
    text = run_summary(run, n_candidates=25, n_rejects=0)
    assert f"subset     : {len(chosen)}" in text
    assert "constraints: 1/2 met" in text and "unmet: min_video" in text


def test_report_of_select_folder_uses_descriptors_named_in_report_json(tmp_path):
    """`gdo select --descriptors A/descriptors.parquet --out B` then `gdo report B`: the report finds the
    descriptors (and the candidates beside them) through report.json instead of showing none."""
    from typer.testing import CliRunner

    from gdo.cli import app

    pool = [str(Path(__file__).resolve().parents[2] / "examples" / "demo_pool" / "llamafactory_image_qa.json")]
    a, b = tmp_path / "prof", tmp_path / "sel"
    r = CliRunner().invoke(app, ["profile", *pool, "--out", str(a), "--descriptors", "fields,dedup",
                                 "--text-encoder", "hashing", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["select", *pool, "-d", str(a / "descriptors.parquet"), "--preset", "temp",
                                 "--budget", "4", "--out", str(b)])
    assert r.exit_code == 0, r.output
    assert not (b / "descriptors.parquet").exists()
    r = CliRunner().invoke(app, ["report", str(b)])
    assert r.exit_code == 0, r.output
    html = (b / "report.html").read_text()
    assert "No descriptors available" not in html
    assert "tnc" in html

"""`gdo compare`: peak match, reduction, deltas and validity on curves whose answers are known by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gdo.compare import CompareError, Curve, compare_benchmark, peak_match, read_curves_csv, run_compare, to_percent
from gdo.compare.readers import parse_lmms_results

# The paper's headline (GDO_METHOD.md section 1): Uni-10x best accuracy and the samples the GDO
# (Temp+) run needed to reach it; reduction = 512k / samples.
HEADLINE = {"mvbench": (62.27, 35_400, 14.5), "videomme": (61.22, 26_600, 19.2),
            "mlvu": (43.81, 27_300, 18.8), "lvbench": (40.22, 34_700, 14.8)}
FIFTHS = [102_400, 204_800, 307_200, 409_600, 512_000]


def _headline_csv(path: Path) -> Path:
    """Curves built by hand so that GDO crosses the baseline's best exactly at the paper's peak matches.

    GDO is evaluated at s0 = match - 5,400 and s1 = match + 4,600, with accuracies best - 0.54 and
    best + 0.46: the straight line between them crosses ``best`` at s0 + 0.54/1.0 * 10,000 = match.
    """
    lines = ["run,samples_seen,benchmark,accuracy"]
    for b, (best, match, _) in HEADLINE.items():
        lines.append(f"start,0,{b},{best - 8:.2f}")
        for s, a in zip(FIFTHS, (best - 3, best - 1, best, best - 0.5, best - 0.2)):
            lines.append(f"baseline,{s},{b},{a:.2f}")
        lines.append(f"gdo,{match - 15_400},{b},{best - 2:.2f}")
        lines.append(f"gdo,{match - 5_400},{b},{best - 0.54:.2f}")
        lines.append(f"gdo,{match + 4_600},{b},{best + 0.46:.2f}")
        lines.append(f"gdo,{match + 24_600},{b},{best + 1.5:.2f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_paper_headline_reductions(tmp_path):
    res = run_compare(tmp_path / "out", csv=_headline_csv(tmp_path / "c.csv"))
    by = {r["benchmark"]: r for r in res["benchmarks"]}
    assert sorted(by) == sorted(HEADLINE)
    for b, (best, match, red) in HEADLINE.items():
        r = by[b]
        assert r["target"] == pytest.approx(best)
        assert r["baseline_size"] == 512_000
        assert r["peak_match"] == pytest.approx(match, abs=1e-6)
        assert r["peak_match_bound"] == "interpolated"
        assert r["reduction"] == pytest.approx(512_000 / match)
        assert round(r["reduction"], 1) == red
        assert r["valid"] is True
        assert r["delta_final"] == pytest.approx((best + 1.5) - (best - 0.2))
        assert r["delta_best"] == pytest.approx(1.5)
    assert res["summary"]["reduction_min"] == pytest.approx(512_000 / 35_400)
    assert res["summary"]["reduction_max"] == pytest.approx(512_000 / 26_600)
    on_disk = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert on_disk["benchmarks"][0]["reduction"] == pytest.approx(res["benchmarks"][0]["reduction"])


def test_html_is_self_contained(tmp_path):
    run_compare(tmp_path / "out", csv=_headline_csv(tmp_path / "c.csv"))
    html = (tmp_path / "out" / "compare.html").read_text()
    assert html.count("<svg") == 4  # one frontier plot per benchmark
    assert "14.5x" in html and "19.2x" in html and "18.8x" in html and "14.8x" in html
    # nothing fetched from elsewhere: links only to fragments of the page itself, no CSS url(), no script
    refs = re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", html)
    assert all(r.startswith("#") for r in refs), [r for r in refs if not r.startswith("#")][:3]
    assert re.findall(r"url\((?!#)", html) == [] and "<script" not in html
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_peak_match_interpolates_between_checkpoints():
    c = Curve("gdo", "b", (100.0, 200.0, 300.0), (50.0, 60.0, 70.0))
    # 64 lies 40% of the way from 60 (at 200) to 70 (at 300)
    assert peak_match(c, 64.0)["samples"] == pytest.approx(240.0)
    assert peak_match(c, 60.0) == {"samples": 200.0, "bound": "exact", "between": [[200.0, 60.0], [200.0, 60.0]]}
    assert peak_match(c, 71.0)["samples"] is None
    # first checkpoint already above: from the start point if known, else an upper bound
    assert peak_match(c, 45.0, start=(0.0, 40.0))["samples"] == pytest.approx(50.0)
    assert peak_match(c, 45.0) == {"samples": 100.0, "bound": "upper", "between": None}


def test_first_crossing_counts_not_a_later_one():
    c = Curve("gdo", "b", (10.0, 20.0, 30.0, 40.0), (50.0, 65.0, 55.0, 70.0))
    assert peak_match(c, 60.0)["samples"] == pytest.approx(10 + 10 / 15 * 10)


def test_baseline_that_never_learned_is_invalid():
    g = Curve("gdo", "b", (0.0, 100.0, 200.0), (50.0, 58.0, 62.0))
    b = Curve("baseline", "b", (0.0, 1000.0, 2000.0), (50.0, 50.4, 49.9))
    r = compare_benchmark(g, b, margin=1.0)
    assert r["valid"] is False
    assert any("never gained 1 pp" in n for n in r["notes"])
    assert r["target"] == 50.4
    # the GDO curve still crosses 50.4: 0.4/8 of the way to 100 samples
    assert r["peak_match"] == pytest.approx(5.0)
    # with a smaller margin the same baseline counts as learned
    assert compare_benchmark(g, b, margin=0.3)["valid"] is True


def test_gdo_never_reaching_gives_no_reduction():
    g = Curve("gdo", "b", (0.0, 100.0, 200.0), (50.0, 55.0, 57.0))
    b = Curve("baseline", "b", (0.0, 1000.0), (50.0, 60.0))
    r = compare_benchmark(g, b)
    assert r["peak_match"] is None and r["reduction"] is None
    assert r["delta_final"] == pytest.approx(-3.0) and r["delta_best"] == pytest.approx(-3.0)
    assert any("never reached" in n for n in r["notes"])


def test_without_start_validity_is_unknown():
    g = Curve("gdo", "b", (100.0,), (70.0,))
    b = Curve("baseline", "b", (1000.0,), (60.0,))
    r = compare_benchmark(g, b, baseline_size=4000)
    assert r["valid"] is None and r["peak_match_bound"] == "upper"
    assert r["reduction"] == pytest.approx(40.0)


def test_fraction_scale_is_converted_and_reported():
    vals, scale = to_percent([0.5, 0.62, 1.0])
    assert scale == "fraction" and vals == pytest.approx([50.0, 62.0, 100.0])
    assert to_percent([50.0, 0.5]) == ([50.0, 0.5], "percent")
    with pytest.raises(CompareError, match="outside"):
        to_percent([1.5], "fraction")


@pytest.mark.parametrize("body, match", [
    ("run,samples_seen,benchmark\ngdo,1,b\n", r"c\.csv:1: missing column\(s\) accuracy"),
    ("run,samples_seen,benchmark,accuracy\ngdo,10,b,0.5\ngdo,x,b,0.6\n", r"c\.csv:3: field 'samples_seen' is not a number"),
    ("run,samples_seen,benchmark,accuracy\ngdo,10,b,\n", r"c\.csv:2: field 'accuracy' is empty"),
    ("run,samples_seen,benchmark,accuracy\ngdo,10,b,0.5\ngdo,10,b,0.6\n", r"c\.csv:3: .*already given on line 2"),
    ("run,samples_seen,benchmark,accuracy\ngdo,-5,b,0.5\n", r"c\.csv:2: field 'samples_seen' must be"),
])
def test_csv_errors_name_file_line_field(tmp_path, body, match):
    p = tmp_path / "c.csv"
    p.write_text(body)
    with pytest.raises(CompareError, match=match):
        read_curves_csv(p)


def test_missing_run_is_an_error(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("run,samples_seen,benchmark,accuracy\ngdo,10,b,0.5\nuni,10,b,0.6\n")
    with pytest.raises(CompareError, match="no results for run 'baseline'"):
        run_compare(tmp_path / "o", csv=p)
    res = run_compare(tmp_path / "o", csv=p, baseline_run="uni")
    assert res["benchmarks"][0]["delta_final"] == pytest.approx(-10.0)


# ---- lmms-eval results folders ------------------------------------------------------------------

def _lmms_json(pretrained: str, mv_subs: dict[str, tuple[float, int]], videomme: float) -> dict:
    """A results JSON in the layout lmms-eval writes (loggers/evaluation_tracker.py)."""
    res = {"mvbench": {" ": " ", "alias": "mvbench"}}
    n_samples = {}
    for t, (acc, n) in mv_subs.items():
        res[t] = {"alias": f" - {t}", "mvbench_accuracy,none": acc, "mvbench_accuracy_stderr,none": "N/A"}
        n_samples[t] = {"original": n, "effective": n}
    res["videomme"] = {"alias": "videomme", "videomme_perception_score,none": videomme,
                       "videomme_perception_score_stderr,none": "N/A"}
    return {"results": res, "group_subtasks": {"mvbench": sorted(mv_subs), "videomme": []},
            "n-samples": n_samples, "config": {"model": "qwen3_vl",
                                               "model_args": f"pretrained={pretrained},max_num_frames=32,fps=1"},
            "model_name": pretrained}


def _write_eval(root: Path, pretrained: str, mv: tuple[float, float], videomme: float, date: str) -> None:
    d = root / pretrained.replace("/", "__")
    d.mkdir(parents=True, exist_ok=True)
    data = _lmms_json(pretrained, {"mvbench_action_sequence": (mv[0], 200), "mvbench_scene_transition": (mv[1], 100)},
                      videomme)
    (d / f"{date}_results.json").write_text(json.dumps(data))


def test_parse_lmms_group_is_sample_weighted():
    data = _lmms_json("ckpt/checkpoint-10", {"mvbench_a": (60.0, 300), "mvbench_b": (90.0, 100)}, 55.5)
    got = parse_lmms_results(data, source="x.json")
    assert got["mvbench"][0] == pytest.approx((60 * 300 + 90 * 100) / 400)
    assert got["mvbench"][1].startswith("sample-weighted mean of 2 subtasks")
    assert got["videomme"] == (55.5, "videomme_perception_score,none")
    assert set(got) == {"mvbench", "videomme"}


def test_lmms_folders_steps_times_batch(tmp_path):
    g, b, s = tmp_path / "eval_gdo", tmp_path / "eval_base", tmp_path / "eval_start"
    _write_eval(s, "Qwen/Qwen3-VL-8B-Instruct", (50.0, 50.0), 50.0, "20260101T000000")
    # GDO: checkpoint-100 and -200 with global batch 8 -> 800 and 1,600 samples
    _write_eval(g, "ckpt/gdo/checkpoint-100", (56.0, 56.0), 54.0, "20260101T010000")
    _write_eval(g, "ckpt/gdo/checkpoint-200", (62.0, 62.0), 58.0, "20260101T020000")
    # baseline: 4 checkpoints with batch 8 -> 8,000 .. 32,000 samples; best mvbench 59 at 16,000
    for st, mv, vm in ((1000, 55.0, 52.0), (2000, 59.0, 56.0), (3000, 58.0, 56.5), (4000, 58.5, 56.0)):
        _write_eval(b, f"ckpt/uni/checkpoint-{st}", (mv, mv), vm, f"2026010{st // 1000}T000000")
    res = run_compare(tmp_path / "out", gdo=g, baseline=b, start=s, gdo_batch_size=8, baseline_batch_size=8)
    by = {r["benchmark"]: r for r in res["benchmarks"]}
    mv = by["mvbench"]
    assert mv["gdo"]["points"] == [[800.0, 56.0], [1600.0, 62.0]]
    assert mv["baseline_size"] == 32_000 and mv["target"] == 59.0
    # 59 is half-way from 56 (800) to 62 (1,600): 1,200 samples, 32,000 / 1,200 = 26.7x
    assert mv["peak_match"] == pytest.approx(1200.0)
    assert mv["reduction"] == pytest.approx(32_000 / 1_200)
    assert mv["start"] == {"samples": 0.0, "accuracy": 50.0} and mv["valid"] is True
    vm = by["videomme"]
    # 56.5 lies between 54 (800) and 58 (1,600): 800 + 2.5/4 * 800 = 1,300
    assert vm["peak_match"] == pytest.approx(1300.0)
    # explicit samples instead of batch size give the same curve
    res2 = run_compare(tmp_path / "out2", gdo=g, baseline=b, start=s, gdo_samples=[800, 1600],
                       baseline_samples=[8000, 16000, 24000, 32000])
    assert res2["benchmarks"] == res["benchmarks"]


def test_lmms_without_step_or_batch_is_a_clear_error(tmp_path):
    g = tmp_path / "g"
    _write_eval(g, "ckpt/gdo/final", (56.0, 56.0), 54.0, "20260101T010000")
    with pytest.raises(CompareError, match="cannot tell the training step of model 'ckpt/gdo/final'"):
        run_compare(tmp_path / "o", gdo=g, baseline=g, gdo_batch_size=8, baseline_batch_size=8)
    _write_eval(tmp_path / "h", "ckpt/gdo/checkpoint-5", (56.0, 56.0), 54.0, "20260101T010000")
    with pytest.raises(CompareError, match="global batch size"):
        run_compare(tmp_path / "o", gdo=tmp_path / "h", baseline=tmp_path / "h")
    with pytest.raises(CompareError, match="no lmms-eval results file"):
        (tmp_path / "empty").mkdir()
        run_compare(tmp_path / "o", gdo=tmp_path / "empty", baseline=tmp_path / "h", gdo_batch_size=1)


def test_cli_compare(tmp_path):
    from typer.testing import CliRunner

    from gdo.cli import app

    csv = _headline_csv(tmp_path / "c.csv")
    r = CliRunner().invoke(app, ["compare", str(csv), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert re.search(r"mvbench\s+63\.77\s+62\.27\s+\+1\.70\s+35,400\s+14\.5x\s+ok", r.output)
    bad = CliRunner().invoke(app, ["compare", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "curves CSV not found" in bad.output


def test_compare_json_floats_have_no_subtraction_noise():
    from gdo.compare import _rounded

    assert 0.3 - 0.1 == 0.19999999999999998
    r = _rounded({"delta": 0.3 - 0.1, "peak": [57.99999999999999, None, float("nan")], "n": 3, "s": "x"})
    assert r["delta"] == 0.2 and r["peak"][0] == 58.0 and r["peak"][1] is None and r["peak"][2] != r["peak"][2]
    assert r["n"] == 3 and r["s"] == "x" and _rounded(512_000 / 35_400) == pytest.approx(512_000 / 35_400, rel=1e-11)

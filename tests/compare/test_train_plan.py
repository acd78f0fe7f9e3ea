"""`gdo train-plan`: the paper's contract for subset and baseline, from the exports a run wrote."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest

from gdo.export import export
from gdo.pool.ingest import ingest
from gdo.trainplan import TrainPlanError, build_train_plan, find_exports, render_train_plan, schedule

REPO = Path(__file__).resolve().parents[2]
POOL = sorted(str(p) for p in (REPO / "examples" / "demo_pool").glob("*.json*"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder whose exports/ hold a 7-sample subset and a 23-sample baseline (both trainers)."""
    cands = ingest(POOL).candidates
    uids = cands.column("uid").to_pylist()
    assert len(uids) >= 30
    run = tmp_path_factory.mktemp("run")
    for fmt in ("swift", "llamafactory"):
        export(cands, run / "exports", fmt, uids=uids[:7], name="subset")
        export(cands, run / "exports", fmt, uids=uids[7:30], name="baseline")
    return run


@pytest.mark.parametrize("n, gb, steps, save, ck", [
    (53_300, 1, 53_300, 10_660, [10_660, 21_320, 31_980, 42_640, 53_300]),
    (512_000, 8, 64_000, 12_800, [12_800, 25_600, 38_400, 51_200, 64_000]),
    (7, 1, 7, 2, [2, 4, 6, 7]),
    (10, 4, 3, 1, [1, 2, 3]),
])
def test_schedule_checkpoints_every_fifth(n, gb, steps, save, ck):
    s = schedule(n, gb)
    assert (s["steps"], s["save_steps"], s["checkpoint_steps"]) == (steps, save, ck)
    assert s["steps"] == math.ceil(n / gb)
    assert s["samples_seen"][-1] == n


def test_find_exports_counts_both_trainers(run_dir):
    sets = find_exports(run_dir)
    assert sets["subset"].n == 7 and sets["baseline"].n == 23
    assert sets["subset"].counts == {"swift": 7, "llamafactory": 7}
    assert {"gdo_subset"} <= set(sets["subset"].llamafactory)


def test_plan_has_the_paper_contract(run_dir):
    plan = build_train_plan(run_dir, model="ckpt/Qwen3-VL-8B-Instruct")
    sub = plan["sets"]["subset"]
    sw = shlex.split(sub["swift"].replace("\\\n", " "))
    # env assignments first, then `swift sft` and its flags
    assert sw[:3] == ["MAX_PIXELS=50176", "VIDEO_MAX_PIXELS=50176", "FPS_MAX_FRAMES=32"]
    assert sw[3:5] == ["swift", "sft"]
    for a, b in (("--num_train_epochs", "1"), ("--learning_rate", "2e-05"), ("--per_device_train_batch_size", "1"),
                 ("--max_length", "8192"), ("--save_strategy", "steps"), ("--save_steps", "2"),
                 ("--train_type", "full"), ("--model", "ckpt/Qwen3-VL-8B-Instruct")):
        assert sw[sw.index(a) + 1] == b, a
    ds = sw[sw.index("--dataset") + 1:]
    assert any(p.endswith("subset.swift.jsonl") for p in ds[:2])
    lf = shlex.split(sub["llamafactory"].replace("\\\n", " "))
    for a, b in (("--cutoff_len", "8192"), ("--image_max_pixels", "50176"), ("--video_max_pixels", "50176"),
                 ("--learning_rate", "2e-05"), ("--num_train_epochs", "1"), ("--save_steps", "2"),
                 ("--finetuning_type", "full"), ("--template", "qwen3_vl")):
        assert lf[lf.index(a) + 1] == b, a
    assert lf[lf.index("--dataset") + 1].split(",")[0] == "gdo_subset"
    assert Path(lf[lf.index("--dataset_dir") + 1]) == (run_dir / "exports").resolve()
    # baseline: 23 samples -> 23 steps, save every 5 -> checkpoints 5, 10, 15, 20, 23
    base = plan["sets"]["baseline"]
    assert base["schedule"]["checkpoint_steps"] == [5, 10, 15, 20, 23]
    assert [e["step"] for e in base["lmms_eval"]] == [5, 10, 15, 20, 23]
    ev = shlex.split(base["lmms_eval"][0]["command"])
    assert ev[ev.index("--tasks") + 1] == "mvbench,videomme,mlvu_test,lvbench"
    margs = ev[ev.index("--model_args") + 1]
    assert margs.endswith("checkpoint-5,max_num_frames=32,fps=1,max_pixels=602112")
    assert ev[ev.index("--output_path") + 1].endswith("eval/baseline/checkpoint-5")
    cmp_ = shlex.split(plan["compare"])
    assert cmp_[:2] == ["gdo", "compare"] and cmp_[cmp_.index("--baseline-size") + 1] == "23"
    text = render_train_plan(plan)
    assert text.count("swift sft") == 2 and text.count("llamafactory-cli train") == 2
    assert text.count("-m lmms_eval") == 1 + 4 + 5  # base model, 4 subset checkpoints, 5 baseline


def test_multi_gpu_changes_global_batch(run_dir):
    plan = build_train_plan(run_dir, gpus=4)
    assert plan["sets"]["baseline"]["schedule"]["steps"] == 6  # ceil(23 / 4)
    assert "NPROC_PER_NODE=4" in plan["sets"]["baseline"]["swift"]
    assert "--gdo-batch-size 4" in plan["compare"]


def test_no_exports_is_a_clear_error(tmp_path):
    with pytest.raises(TrainPlanError, match="no exports folder.*--export swift"):
        build_train_plan(tmp_path)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "subset.llava.json").write_text("[]")
    with pytest.raises(TrainPlanError, match="no ms-swift"):
        build_train_plan(tmp_path)


def test_mismatched_exports_are_an_error(tmp_path):
    ex = tmp_path / "exports"
    ex.mkdir()
    (ex / "subset.swift.jsonl").write_text('{"messages": []}\n' * 3)
    (ex / "subset.llamafactory.json").write_text(json.dumps([{"messages": []}] * 2))
    (ex / "dataset_info.json").write_text(json.dumps({"gdo_subset": {"file_name": "subset.llamafactory.json"}}))
    with pytest.raises(TrainPlanError, match="3 ms-swift records but 2 LLaMA-Factory"):
        find_exports(tmp_path)


def test_cli_train_plan(run_dir, tmp_path):
    from typer.testing import CliRunner

    from gdo.cli import app

    r = CliRunner().invoke(app, ["train-plan", str(run_dir), "--trainer", "swift"])
    assert r.exit_code == 0, r.output
    assert "swift sft" in r.output and "llamafactory-cli" not in r.output
    assert "# --- subset: 7 samples" in r.output
    bad = CliRunner().invoke(app, ["train-plan", str(tmp_path)])
    assert bad.exit_code == 2 and "no exports folder" in bad.output

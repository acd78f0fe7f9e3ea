"""`profile` / `gdo profile`: descriptors.parquet contents, determinism, resume, modes, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _descriptor_helpers import cand, frames_of, table
from gdo.descriptors.profile import EXTRA_COLUMNS, profile
from gdo.schema import DESCRIPTOR_COLUMNS

SHARDS = {"media": 2, "text": 4}


@pytest.fixture(scope="module")
def pool(real_data) -> pa.Table:
    R = real_data
    rows = [
        cand("vv::bed::t0", kind="frames", media=frames_of(R / "facebookresearch__sam2/notebooks/videos/bedroom"),
             question="What happens after the girl walks in?", answer="She sits on the bed."),
        cand("vv::imgs::t0", kind="frames", media=frames_of(R / "open-mmlab__mmaction2/tests/data/imgs"),
             question="Which sport is shown?\nA. golf\nB. tennis", answer="A"),
        cand("vv::lf3::t0", kind="video", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4"],
             native=146, question="What's in the video?", answer="A baby is playing in the living room."),
        cand("vv::vl3::t0", kind="video", media=[R / "PKU-YuanGroup__Video-LLaVA/videollava/serve/examples/sample_demo_3.mp4"],
             native=146, question="Why is this video funny?", answer="The baby counts down."),
        cand("vv::skel::t0", kind="video", media=[R / "open-mmlab__mmaction2/demo/demo_skeleton.mp4"],
             native=None, question="What does the person do first?", answer="Stands still."),
        cand("vv::skel::t1", kind="video", media=[R / "open-mmlab__mmaction2/demo/demo_skeleton.mp4"],
             native=None, question="Is anyone moving?", answer="Barely."),
        cand("vv::lion::t0", kind="video", media=[R / "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"],
             native=17, question="Describe the lion.", answer="It walks."),
        cand("ov::img1::t0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
             question="Who are they?", answer="Footballers.", data_source="llava_ov_coco_x(2)"),
        cand("ov::txt::t0", kind="none", media=[], question="Say hello.", answer="Hello."),
    ]
    return table(rows)


@pytest.fixture(scope="module")
def run_a(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("prof_a")
    t = profile(pool, out, workers=1, shard_sizes=SHARDS)
    return out, t


def _by_uid(t: pa.Table) -> dict:
    return {r["uid"]: r for r in t.to_pylist()}


def test_columns_and_values(run_a):
    out, t = run_a
    assert t.column_names[: len(DESCRIPTOR_COLUMNS)] == DESCRIPTOR_COLUMNS
    assert t.column_names[len(DESCRIPTOR_COLUMNS):] == EXTRA_COLUMNS
    on_disk = pq.read_table(out / "descriptors.parquet")
    assert on_disk.equals(t)
    r = _by_uid(t)
    assert r["vv::bed::t0"]["amm"] == pytest.approx(5.417, rel=0.01)
    assert r["vv::imgs::t0"]["amm"] == pytest.approx(0.358, rel=0.01)
    assert r["vv::skel::t0"]["amm"] == r["vv::skel::t1"]["amm"] < r["vv::bed::t0"]["amm"] / 5
    assert r["ov::img1::t0"]["amm"] == 0.0 and r["ov::img1::t0"]["frame_diversity"] == 0.0
    # near-duplicate encodings share a group; unrelated clips don't
    assert r["vv::lf3::t0"]["dup_group"] == r["vv::vl3::t0"]["dup_group"]
    assert r["vv::lf3::t0"]["dup_group"] != r["vv::skel::t0"]["dup_group"]
    assert r["vv::lion::t0"]["dup_group"] not in {r[u]["dup_group"] for u in r if u != "vv::lion::t0"}
    # fields
    # tnc: the model-free text classifier (no judge ran); the lexical rule in its own column (issue 15)
    assert r["vv::bed::t0"]["tnc_lexical"] == 1.0 and r["vv::bed::t0"]["temporal_category"] == "Temporal"
    assert r["vv::lf3::t0"]["tnc_lexical"] == 0.0 and r["vv::lf3::t0"]["temporal_category"] == "Mixed"
    assert all(row["tnc"] == row["tnc_text"] for row in r.values())
    assert r["vv::bed::t0"]["tnc"] > 0.9 and r["vv::lf3::t0"]["tnc"] < 0.5
    assert r["ov::img1::t0"]["temporal_category"] == "Static"
    assert r["vv::imgs::t0"]["question_form"] == "MCQ"
    assert r["vv::lf3::t0"]["duration_bucket"] == "long"  # native 146 frames (default mode)
    assert r["vv::skel::t0"]["native_frames"] == 72 and r["vv::skel::t0"]["duration_bucket"] == "long"
    assert r["ov::img1::t0"]["duration_bucket"] == "image"
    assert r["ov::img1::t0"]["source_group"] == "llava_ov_coco_x"
    # clusters
    ids = t.column("cluster_id").to_pylist()
    rep = np.array(t.column("cluster_rep").to_pylist())
    assert all(i is not None for i in ids) and np.all((rep > 0) & (rep <= 1))
    assert np.allclose(rep + np.array(t.column("cluster_hard").to_pylist()), 1)
    # no model: model columns null, never zero
    for c in ("loss_video", "loss_blind", "vds", "ppl", "sc", "tnc_judge", "model_error"):
        assert t.column(c).null_count == t.num_rows
    meta = json.loads((out / "descriptors.meta.json").read_text())
    assert meta["model_id"] is None and meta["model_ran"] is False and len(meta["config_hash"]) == 16
    assert "numpy" in meta["library_versions"] and meta["mode"] == "default"
    emb = pq.read_table(out / "embeddings.parquet")
    assert emb.schema.field("text_emb").type == pa.list_(pa.float32(), 384)
    assert emb.column("uid").to_pylist() == t.column("uid").to_pylist()
    assert pq.read_table(out / "media.parquet").num_rows == 7  # 6 videos + 1 image set


def test_identical_twice_and_any_worker_count(pool, run_a, tmp_path):
    out_a, _ = run_a
    ref = (out_a / "descriptors.parquet").read_bytes()
    profile(pool, tmp_path / "w2", workers=2, shard_sizes=SHARDS)
    assert (tmp_path / "w2" / "descriptors.parquet").read_bytes() == ref
    assert (tmp_path / "w2" / "embeddings.parquet").read_bytes() == (out_a / "embeddings.parquet").read_bytes()
    assert (tmp_path / "w2" / "descriptors.meta.json").read_bytes() == (out_a / "descriptors.meta.json").read_bytes()
    # a fresh run with another media shard size gives the same values too (media items are
    # independent; the text shard size is fixed because it decides MiniLM's batch padding)
    t3 = profile(pool, tmp_path / "again", workers=2, shard_sizes={"media": 3, "text": 4})
    assert t3.equals(pq.read_table(out_a / "descriptors.parquet"))


def test_resume_reuses_finished_shards(pool, run_a, tmp_path):
    out_a, t_a = run_a
    import shutil

    out = tmp_path / "resume"
    shutil.copytree(out_a, out)
    media_dir = next((out / ".gdo" / "shards" / "media").iterdir())
    shards = sorted(media_dir.glob("*.parquet"))
    assert len(shards) == 4  # 7 media items, 2 per shard
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    (media_dir / (shards[1].name[: -len(".parquet")] + ".done.json")).unlink()  # lose one marker
    t = profile(pool, out, workers=1, shard_sizes=SHARDS)
    assert t.equals(t_a)
    after = {p.name: p.stat().st_mtime_ns for p in sorted(media_dir.glob("*.parquet"))}
    changed = [n for n in after if after[n] != mtimes[n]]
    assert changed == [shards[1].name]
    timings = json.loads((out / "timings.json").read_text())["profile"]
    assert timings["text"] < timings["media"] + 1.0


def test_paper_mode(pool, tmp_path):
    t = profile(pool, tmp_path, mode="paper", descriptors=["fields", "cluster"], shard_sizes=SHARDS)
    r = _by_uid(t)
    assert r["vv::lf3::t0"]["duration_bucket"] == "medium"  # 32 frames after cutting
    assert r["vv::imgs::t0"]["question_form"] == "Open"  # release collapses whitespace first
    assert r["vv::bed::t0"]["amm"] is None  # motion group not requested -> null
    assert r["vv::bed::t0"]["dup_group"] is None
    assert r["vv::bed::t0"]["cluster_id"] is not None


def test_bad_inputs(pool, tmp_path, real_data):
    dup = pa.concat_tables([pool.slice(0, 1), pool.slice(0, 1)])
    with pytest.raises(ValueError, match="duplicate uid"):
        profile(dup, tmp_path / "d")
    with pytest.raises(ValueError, match="unknown descriptor"):
        profile(pool, tmp_path / "d", descriptors=["motion", "magic"])
    with pytest.raises(ValueError, match="lacks columns"):
        profile(pool.drop_columns(["media"]), tmp_path / "d")
    broken = table([cand("vv::gone::t0", kind="video", media=[tmp_path / "missing.mp4"], native=10),
                    cand("vv::ok::t0", kind="video",
                         media=[real_data / "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"])])
    t = profile(broken, tmp_path / "b", descriptors=["motion", "dedup"])
    r = _by_uid(t)
    assert r["vv::gone::t0"]["amm"] is None and "missing.mp4" in r["vv::gone::t0"]["media_error"]
    assert r["vv::ok::t0"]["amm"] > 0 and r["vv::ok::t0"]["media_error"] is None


def test_cli_ingests_then_reuses_candidates(real_data, tmp_path):
    from typer.testing import CliRunner

    from gdo.cli import app

    pool_file = real_data / "hiyouga__LLaMA-Factory/data/mllm_video_demo.json"
    out = tmp_path / "cli"
    args = ["profile", str(pool_file), "--out", str(out), "--workers", "2", "--no-progress",
            "--descriptors", "fields,motion,dedup"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "only the model-free descriptors" in res.output
    t = pq.read_table(out / "descriptors.parquet")
    assert t.num_rows == 3 and t.column("amm").null_count == 0
    cand_mtime = (out / "candidates.parquet").stat().st_mtime_ns
    res2 = CliRunner().invoke(app, args)
    assert res2.exit_code == 0, res2.output
    assert (out / "candidates.parquet").stat().st_mtime_ns == cand_mtime  # reused, not re-ingested
    assert pq.read_table(out / "descriptors.parquet").equals(t)
    bad = CliRunner().invoke(app, ["profile", str(pool_file), "--out", str(out), "--mode", "fast"])
    assert bad.exit_code == 2


def test_model_columns_merged_and_resumable(real_data, tiny_model, tmp_path):
    pytest.importorskip("gdo.models.hf")
    R = real_data
    pool = table([
        cand("vv::m::t0", kind="video", media=[R / "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"],
             question="What happens after the lion stops?", answer="It looks around."),
        cand("ov::m::t0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
             question="Who is in the picture?", answer="Two footballers."),
    ])
    out = tmp_path / "m"
    t = profile(pool, out, model=tiny_model, model_frames=4, descriptors=["fields", "motion"], device="cpu",
                shard_sizes={"model": 1})
    for c in ("loss_video", "loss_blind", "vds", "ppl"):
        vals = t.column(c).to_pylist()
        assert all(v is not None and np.isfinite(v) for v in vals), (c, t.column("model_error").to_pylist())
    assert np.allclose(t.column("vds").to_numpy(), t.column("loss_blind").to_numpy() - t.column("loss_video").to_numpy())
    meta = json.loads((out / "descriptors.meta.json").read_text())
    assert meta["model_ran"] and meta["model_id"].startswith(Path(tiny_model).name + "@")
    model_dir = next((out / ".gdo" / "shards" / "model").iterdir())
    shards = sorted(model_dir.glob("*.parquet"))
    assert len(shards) == 2
    before = [p.stat().st_mtime_ns for p in shards]
    t2 = profile(pool, out, model=tiny_model, model_frames=4, descriptors=["fields", "motion"], device="cpu",
                 shard_sizes={"model": 1})
    assert [p.stat().st_mtime_ns for p in shards] == before  # finished model shards reused
    assert t2.equals(t)

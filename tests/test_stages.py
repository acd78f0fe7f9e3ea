"""The stage layer (gdo.stages): select writes its files deterministically, from pool files or a folder."""

from __future__ import annotations

import json

import pytest

from gdo import stages
from gdo.config import IngestConfig, SelectConfig


@pytest.fixture()
def llamafactory_pools(real_data):
    src = real_data / "hiyouga__LLaMA-Factory" / "data"
    return [str(src / "mllm_demo.json"), str(src / "mllm_video_demo.json")]


def test_select_stage_files_are_byte_identical(llamafactory_pools, tmp_path):
    cfg = SelectConfig.make(preset="diverse", budget=6, mode="paper")
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}"
        cands = stages.load_candidates(llamafactory_pools, IngestConfig.make(workers=1))
        stages.select_stage(cands, None, out, cfg)
        outs.append(out)
    for name in stages.SELECT_FILES:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    rep = json.loads((outs[0] / "report.json").read_text())
    for key in ("budget", "constraints", "fields", "strata", "stages", "accounting", "preset", "mode",
                "descriptor_stats"):
        assert key in rep
    assert "seconds" not in json.dumps(rep)
    assert rep["inputs"]["pool_files"] == llamafactory_pools  # absolute, argument order
    assert rep["outputs"] == {"writer": "gdo.pool.writer", "files": list(stages.SELECT_FILES)}
    assert json.loads((outs[0] / "timings.json").read_text())["total"] > 0


def test_select_from_ingest_folder_equals_select_from_files(llamafactory_pools, tmp_path):
    """An ingest folder gives the same candidates, reject count and pool files as a lean ingest
    (both without probing media: probing fills n_frames, which selection uses)."""
    res = stages.ingest_stage(llamafactory_pools[::-1], tmp_path / "ing", IngestConfig.make(probe_media=False))
    a = stages.load_candidates([tmp_path / "ing"], IngestConfig.make())
    b = stages.load_candidates(llamafactory_pools[::-1], IngestConfig.make())
    assert a.pool_files == b.pool_files == llamafactory_pools[::-1]  # argument order, not ingest.json's sorted keys
    assert a.n_rejects == b.n_rejects == len(res.rejects)
    cfg = SelectConfig.make(preset="temp", budget=4)
    ra = stages.select_stage(a, None, tmp_path / "a", cfg)
    rb = stages.select_stage(b, None, tmp_path / "b", cfg)
    assert ra.gdo_uids() == rb.gdo_uids() and len(ra.gdo_uids()) == 4
    for name in ("subset.jsonl", "selection.jsonl", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_no_candidate_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text("not json\n")
    with pytest.raises(stages.StageError, match=r"nothing usable was read.*unknown_format=1"):
        stages.load_candidates([p], IngestConfig.make())
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        stages.load_candidates([tmp_path / "nope.jsonl"], IngestConfig.make())

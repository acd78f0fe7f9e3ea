"""The embedded demo pool: real annotations, attributed media, all input kinds, small."""

from __future__ import annotations

import json
from pathlib import Path

from gdo.pool.ingest import ingest

REPO = Path(__file__).resolve().parents[2]
EX = REPO / "examples"
POOL = EX / "demo_pool"


def _pool_files() -> list[str]:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("run_demo", EX / "run_demo.py")
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [str(POOL / f) for f in mod.POOL_FILES]


def test_pool_ingests_cleanly_with_every_kind_and_format():
    files = _pool_files()
    assert sorted(Path(f).name for f in files) == sorted(p.name for p in POOL.glob("*.json*"))
    res = ingest(files)
    assert res.rejects == []
    t = res.candidates
    assert 30 <= t.num_rows <= 60
    kinds = t.column("media_kind").to_pylist()
    assert {"image", "video", "frames"} <= set(kinds)
    assert set(t.column("bucket").to_pylist()) == {"image_qa", "short_video"}
    assert len(set(t.column("format").to_pylist())) >= 3
    assert all(a.strip() for a in t.column("answer").to_pylist())


def test_size_and_attribution():
    files = [p for p in POOL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 15 * 2**20
    attribution = (EX / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for p in files:
        rel = p.relative_to(POOL).as_posix()
        if "_frames/" in rel:  # frame folders are listed once per folder
            rel = rel.rsplit("/", 1)[0]
        name = rel.split("/")[-1]
        assert rel in attribution or name in attribution, f"{rel} has no attribution entry"
    for licence_word in ("Apache-2.0", "commit"):
        assert licence_word in attribution


def test_answers_are_real(real_data):
    """Every answer in the demo pool occurs verbatim in the source annotations."""
    sources = [
        "hiyouga__LLaMA-Factory/data/mllm_demo.json",
        "hiyouga__LLaMA-Factory/data/mllm_video_demo.json",
        "hiyouga__LLaMA-Factory/data/mllm_video_audio_demo.json",
        "hiyouga__LLaMA-Factory/data/v1_multimodal_demo.jsonl",
        "modelscope__data-juicer/demos/data/demo-dataset-videos.jsonl",
        "modelscope__data-juicer/demos/data/demo-dataset-images.jsonl",
        "open-mmlab__mmaction2/tests/data/annotations/video_text_test_list.json",
    ]
    text = ""
    for s in sources:
        raw = (real_data / s).read_text(encoding="utf-8")
        # decode JSON escapes so non-ASCII answers compare as text
        for line in (raw.splitlines() if s.endswith(".jsonl") else [raw]):
            if line.strip():
                text += json.dumps(json.loads(line), ensure_ascii=False) + "\n"
    res = ingest(_pool_files())
    for a in res.candidates.column("answer").to_pylist():
        assert a in text, f"answer not found in the sources: {a!r}"


def test_copied_media_are_byte_identical(real_data):
    import hashlib

    manifest = {e["local"]: e for e in json.loads((real_data / "manifest.json").read_text())}
    pairs = {
        "mllm_demo_data/1.mp4": "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.mp4",
        "mllm_demo_data/2.avi": "hiyouga__LLaMA-Factory/data/mllm_demo_data/2.avi",
        "media/data_juicer/video1.mp4": "modelscope__data-juicer/tests/ops/data/video1.mp4",
        "media/mmaction2/test.mp4": "open-mmlab__mmaction2/tests/data/test.mp4",
        "mllm_demo_data/3.jpg": "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.jpg",
    }
    for ours, src in pairs.items():
        digest = hashlib.sha256((POOL / ours).read_bytes()).hexdigest()
        assert digest == manifest[src]["sha256"], ours

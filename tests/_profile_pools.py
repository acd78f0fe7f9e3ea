"""Pools shared by the engine tests and the golden-output recorder (real clips in ../shared/data/real).

``record_golden.py`` in this folder writes ``tests/data/profile_golden/*.parquet`` from a given
source tree (run it with ``PYTHONPATH=<old checkout>/src`` to record the pre-change output).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from _descriptor_helpers import cand, frames_of, table

#: Small shard sizes so that every stage has several shards (resume / engine tests need them).
SHARDS = {"media": 2, "text": 4, "model": 1}


#: Fixed path the pools name the real data by. Media paths enter descriptors.parquet (video_key,
#: media_key) and the stable hashes built on them (frame-list keys, dup groups), so the golden files
#: can only be byte-compared when the pool names the clips by the same absolute path on every
#: machine, wherever ../shared happens to live (CI checks out elsewhere than a developer does).
CANONICAL_REAL = Path("/tmp/gdo-golden-real")


def canonical_real(real: Path) -> Path:
    """A symlink at :data:`CANONICAL_REAL` to ``real`` (created or repointed atomically).

    Any copy of the shared real data has the same files (``manifest.json``), so repointing the
    link to another copy while another session reads through it changes no byte it reads.
    """
    real = Path(real).resolve()
    try:
        if CANONICAL_REAL.resolve() == real:
            return CANONICAL_REAL
    except OSError:
        pass
    tmp = CANONICAL_REAL.with_name(f"{CANONICAL_REAL.name}.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(real, target_is_directory=True)
    os.replace(tmp, CANONICAL_REAL)
    return CANONICAL_REAL


def real_pool(R: Path) -> pa.Table:
    """Nine candidates over the real clips: frame lists, videos (two near-duplicate encodings, one
    clip used twice), an image and a text-only row; named through :func:`canonical_real`."""
    R = canonical_real(R)
    rows = [
        cand("vv::bed::t0", kind="frames", media=frames_of(R / "facebookresearch__sam2/notebooks/videos/bedroom"),
             question="What happens after the girl walks in?", answer="She sits on the bed."),
        cand("vv::imgs::t0", kind="frames", media=frames_of(R / "open-mmlab__mmaction2/tests/data/imgs"),
             question="Which sport is shown?\nA. golf\nB. tennis", answer="A"),
        cand("vv::lf3::t0", kind="video", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4"],
             native=146, question="What's in the video?", answer="A baby is playing in the living room."),
        cand("vv::vl3::t0", kind="video",
             media=[R / "PKU-YuanGroup__Video-LLaVA/videollava/serve/examples/sample_demo_3.mp4"],
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


def model_pool(R: Path) -> pa.Table:
    """Two candidates (a video, an image) for the tiny-model stage (named through
    :func:`canonical_real`)."""
    R = canonical_real(R)
    return table([
        cand("vv::m::t0", kind="video", media=[R / "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"],
             question="What happens after the lion stops?", answer="It looks around."),
        cand("ov::m::t0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
             question="Who is in the picture?", answer="Two footballers."),
    ])


#: name -> (pool builder, profile keyword arguments); "model" cases also get model=<tiny model>.
CASES = {
    "real_default": (real_pool, {"shard_sizes": SHARDS}),
    "real_paper": (real_pool, {"shard_sizes": SHARDS, "mode": "paper", "k": 3}),
    "real_hashing_nocluster": (real_pool, {"shard_sizes": SHARDS, "text_encoder": "hashing",
                                           "descriptors": ["fields", "motion", "dedup", "embeddings"]}),
    "model_tiny": (model_pool, {"shard_sizes": SHARDS, "model_frames": 4, "device": "cpu",
                                "descriptors": ["fields", "motion", "cluster"], "k": 2}),
}

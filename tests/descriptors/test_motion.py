"""AMM and frame diversity (GDO_METHOD.md 3.3) on real media."""

from __future__ import annotations

import numpy as np
import pytest

from _descriptor_helpers import frames_of
from gdo.descriptors.motion import (amm_and_diversity, load_motion_frames, motion_from_gray, motion_indices,
                                    to_gray224, uniform_indices)


def test_uniform_indices_rule():
    assert uniform_indices(10, 32) == list(range(10))
    assert uniform_indices(32, 32) == list(range(32))
    idx = uniform_indices(100, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 99
    assert idx == [round(i * 99 / 31) for i in range(32)]
    # round half to even: n=4, t=3 -> 0, 1.5 -> 2, 3
    assert uniform_indices(4, 3) == [0, 2, 3]
    with pytest.raises(ValueError):
        uniform_indices(5, 0)


def test_motion_indices_8_of_32():
    # 8 of the 32 sampled: positions round(i*31/7) of the sampled list
    n = 300
    sampled = uniform_indices(n, 32)
    assert motion_indices(n) == [sampled[round(i * 31 / 7)] for i in range(8)]
    assert motion_indices(20) == [0, 3, 5, 8, 11, 14, 16, 19]
    assert motion_indices(5) == [0, 1, 2, 3, 4]


def test_pinned_amm_bedroom_frames(real_data):
    files = frames_of(real_data / "facebookresearch__sam2/notebooks/videos/bedroom")
    assert len(files) == 20
    fr, native = load_motion_frames("frames", files)
    assert native == 20 and len(fr) == 8
    amm, div = amm_and_diversity(fr)
    assert amm == pytest.approx(5.417, rel=0.01)
    assert 0.0 < div < 1.0


def test_pinned_amm_mmaction_imgs(real_data):
    files = frames_of(real_data / "open-mmlab__mmaction2/tests/data/imgs")
    assert len(files) == 10
    fr, _ = load_motion_frames("frames", files)
    amm, div = amm_and_diversity(fr)
    assert amm == pytest.approx(0.358, rel=0.01)
    assert div < 0.05


def test_static_far_below_moving(real_data):
    def amm_of(rel):
        fr, _ = load_motion_frames("video", [str(real_data / rel)])
        return amm_and_diversity(fr)

    static_amm, static_div = amm_of("open-mmlab__mmaction2/demo/demo_skeleton.mp4")
    for rel in ("OpenGVLab__Ask-Anything/video_chat_text/video_chat_with_ChatGPT/images/making_cake.mp4",
                "open-mmlab__mmaction2/demo/demo.mp4"):
        moving_amm, moving_div = amm_of(rel)
        assert moving_amm > 10 * static_amm, rel
        assert moving_div > 5 * static_div, rel


def test_synthetic_translation_and_identity():
    rng = np.random.default_rng(0)
    base = (rng.random((224 + 40, 224 + 40)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 3)
    still = [base[:224, :224].copy() for _ in range(4)]
    amm, div = motion_from_gray(still)
    assert amm < 0.01 and div == 0.0
    shifted = [base[:224, 2 * i:224 + 2 * i].copy() for i in range(4)]  # 2 px per frame
    amm, div = motion_from_gray(shifted)
    assert 1.5 < amm < 2.5
    assert div > 0.0


def test_images_and_single_frames_are_zero(real_data):
    img = str(real_data / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg")
    fr, n = load_motion_frames("image", [img])
    assert n == 1 and len(fr) == 1
    assert amm_and_diversity(fr) == (0.0, 0.0)
    assert to_gray224(fr[0]).shape == (224, 224)

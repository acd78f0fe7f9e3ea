"""Shared fixtures: real media from ../shared/data/real, a tiny offline VLM, thread limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")


try:  # property tests draw the same examples on every run: CI is deterministic (run locally with
    # --hypothesis-profile=explore, or edit this, to search afresh)
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("deterministic", derandomize=True, database=None)
    _hyp_settings.register_profile("explore", derandomize=False)
    _hyp_settings.load_profile("deterministic")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


def _real_data_dir() -> Path:
    env = os.environ.get("GDO_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real media and annotations (../shared/data/real); skips the test when absent."""
    d = _real_data_dir()
    if not (d / "manifest.json").exists():
        pytest.skip(f"real data not found at {d}")
    return d


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Qwen2-VL-architecture model + processor built offline (gdo.models.tiny)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from gdo.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny_vlm")
    build_tiny_model(out, seed=0)
    return out

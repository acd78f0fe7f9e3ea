"""Record descriptors.parquet of every case in ``_profile_pools.CASES`` (run with the code to record).

Usage: ``PYTHONPATH=<src>:tests python tests/engine/record_golden.py OUT_DIR [REAL_DATA]``.
The tiny model is built with :func:`gdo.models.tiny.build_tiny_model` (seed 0) into
``OUT_DIR/tiny_vlm0`` (the folder name enters only the meta file, not descriptors.parquet).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from _profile_pools import CASES  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from gdo.descriptors.profile import profile
    from gdo.models.tiny import build_tiny_model

    out = Path(sys.argv[1])
    real = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parents[3] / "shared/data/real"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny_vlm0"
        build_tiny_model(tiny, seed=0)
        for name, (builder, kw) in CASES.items():
            kw = dict(kw)
            if name.startswith("model"):
                kw["model"] = tiny
            work = Path(tmp) / name
            profile(builder(real), work, **kw)
            shutil.copyfile(work / "descriptors.parquet", out / f"{name}.parquet")
            print(name, (out / f"{name}.parquet").stat().st_size)


if __name__ == "__main__":
    main()

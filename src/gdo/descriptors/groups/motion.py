"""Motion: AMM and frame diversity (GDO_METHOD.md 3.3, :mod:`gdo.descriptors.motion`).

Per media item from the shared frames (images: both 0); per candidate its item's values, 0 for a
candidate without media, null when its media could not be read.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gdo.descriptors.registry import Descriptor, MediaDescriptor, register


def _compute(kind: str, frames: list) -> dict:
    from gdo.descriptors.motion import amm_and_diversity

    if kind in ("video", "frames"):
        amm, div = amm_and_diversity(frames)
    else:
        amm, div = 0.0, 0.0  # images: both 0 (GDO_METHOD.md 3.3)
    return {"amm": amm, "frame_diversity": div}


register(MediaDescriptor(
    name="motion", columns=(("amm", pa.float64()), ("frame_diversity", pa.float64())),
    compute=_compute, default=lambda: {"amm": None, "frame_diversity": None}))


def _columns(ctx) -> dict:
    # NaN (unreadable media) is null
    return {"amm": pa.array(ctx.amm, pa.float64(), mask=np.isnan(ctx.amm)),
            "frame_diversity": pa.array(ctx.div, pa.float64(), mask=np.isnan(ctx.div))}


register(Descriptor(name="motion", columns={"amm": pa.float64(), "frame_diversity": pa.float64()},
                    needs=("media",), compute=_columns))

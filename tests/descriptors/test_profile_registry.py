"""The descriptor registry (issue 11 item 3) and ProfileConfig: profile() walks the registry, a new
descriptor is one module + one registration, shared frames, and config validation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gdo.descriptors.config import ProfileConfig
from gdo.descriptors.registry import Descriptor, MediaDescriptor, Registry, Stage, registry

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "profile_golden"


def test_builtin_registry_contents():
    r = registry()
    assert [s.name for s in r.stages] == ["media", "visual_hf", "text", "model"]
    assert [m.name for m in r.media] == ["motion", "visual", "hashes"]
    names = [d.name for d in r.descriptors]
    for g in ("base", "motion", "dedup", "model", "fields", "cluster", "embeddings"):
        assert g in names
    assert {s.name: s.uses_model for s in r.stages} == {"media": False, "visual_hf": True, "text": True,
                                                       "model": True}


def test_duplicate_registration_rejected():
    r = Registry()
    d = Descriptor(name="x", columns={}, needs=(), compute=lambda ctx: {})
    r.add(d)
    with pytest.raises(ValueError, match="already registered"):
        r.add(Descriptor(name="x", columns={}, needs=(), compute=lambda ctx: {}))


def test_profile_config_validation():
    assert ProfileConfig().groups == ["fields", "motion", "embeddings", "cluster", "dedup"]
    assert ProfileConfig(descriptors="motion, dedup").descriptors == ("motion", "dedup")
    for bad, msg in [({"mode": "fast"}, "mode must be"), ({"descriptors": ["motion", "colour"]}, "unknown descriptor"),
                     ({"frames": 0}, "greater than or equal to 1"), ({"engine": "spark"}, "engine must be"),
                     ({"shard_sizes": {"media": 0}}, "shard size must be >= 1"),
                     ({"devices": (0,)}, "needs engine='ray'"), ({"colour": 1}, "Extra inputs")]:
        with pytest.raises(ValueError, match=msg):
            ProfileConfig(**bad)
    cfg = ProfileConfig(shard_sizes={"media": 3})
    assert cfg.sizes["media"] == 3 and cfg.sizes["text"] == 2048
    with pytest.raises(Exception):
        cfg.mode = "paper"  # frozen


def test_new_descriptor_is_one_module_plus_registration(real_data, tmp_path):
    """A brightness descriptor in its own file, registered by importing it: its column is appended
    to descriptors.parquet with the value computed independently from the same frames, the media
    is decoded once for all media descriptors, and every other column is unchanged (golden)."""
    mod = tmp_path / "gdo_brightness_descriptor.py"
    mod.write_text(textwrap.dedent('''
        import numpy as np, pyarrow as pa
        from gdo.descriptors.registry import Descriptor, MediaDescriptor, register

        def _compute(kind, frames):
            return {"brightness": float(np.mean([f.mean() for f in frames]))}

        register(MediaDescriptor(name="brightness", columns=(("brightness", pa.float64()),),
                                 compute=_compute, default=lambda: {"brightness": None}))

        def _col(ctx):
            mt, ci = ctx.media_tab, ctx.cand_item
            vals = mt.column("brightness").to_pylist() if mt is not None else []
            return {"brightness": [vals[j] if j >= 0 else None for j in ci]}

        register(Descriptor(name="brightness", columns={"brightness": pa.float64()}, needs=("media",),
                            compute=_col, enabled=lambda ctx: True))
    '''))
    script = textwrap.dedent(f'''
        import json, sys
        sys.path[:0] = [{str(tmp_path)!r}, {str(Path(__file__).resolve().parents[1])!r}]
        import gdo.descriptors.groups, gdo_brightness_descriptor  # the registration line
        import gdo.descriptors.motion as M
        calls = []
        orig = M.load_motion_media  # the media stage's one decode per item (gdo.media facts too)
        def counting(*a, **k):
            calls.append(a[1][0])
            return orig(*a, **k)
        M.load_motion_media = counting
        from pathlib import Path
        import numpy as np, pyarrow.parquet as pq
        from _profile_pools import CASES
        from gdo.descriptors.profile import profile
        builder, kw = CASES["real_hashing_nocluster"]
        cands = builder(Path({str(real_data)!r}))
        t = profile(cands, {str(tmp_path / "o")!r}, **kw)
        fr = orig("video", [cands.column("media")[6].as_py()[0]], 32)[0]
        print(json.dumps({{"cols": t.column_names, "b": t.column("brightness").to_pylist(),
                          "indep_lion": float(np.mean([f.mean() for f in fr])), "decodes": len(calls),
                          "distinct": len(set(calls))}}))
    ''')
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["cols"][-1] == "brightness"
    assert out["b"][6] == pytest.approx(out["indep_lion"], rel=1e-12)  # vv::lion::t0
    assert out["b"][8] is None  # text-only candidate
    assert out["decodes"] == out["distinct"] == 7  # 7 distinct media items, each decoded once
    import pyarrow.parquet as pq

    got = pq.read_table(tmp_path / "o" / "descriptors.parquet").drop_columns(["brightness"])
    assert got.equals(pq.read_table(GOLDEN / "real_hashing_nocluster.parquet"))

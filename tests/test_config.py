"""Frozen, validated stage configs (gdo.config; issue 11 item 2)."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from gdo.config import ConfigError, ExportConfig, IngestConfig, ProfileConfig, ReportConfig, RunConfig, SelectConfig


@pytest.mark.parametrize("kw, words", [
    (dict(preset="temp", budget="-3"), ["--budget", "non-negative"]),
    (dict(preset="temp", budget="1.5"), ["--budget", "'1.5'"]),
    (dict(preset="fastest"), ["unknown preset", "temp_plus"]),
    (dict(), ["exactly one of --preset and --goal"]),
    (dict(preset="temp", goal="g.toml"), ["exactly one of --preset and --goal"]),
    (dict(preset="temp", mode="papr"), ["--mode", "'default' or 'paper'", "papr"]),
    (dict(preset="temp", baseline_mult=0), ["--baseline-mult"]),
    (dict(preset="temp", bogus=1), ["--bogus: unknown option"]),
])
def test_select_config_rejects_bad_options_by_name(kw, words):
    with pytest.raises(ConfigError) as e:
        SelectConfig.make(**kw)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_budget_parsing_and_frozen():
    assert SelectConfig.make(preset="temp", budget=" 12 ").budget == 12
    assert SelectConfig.make(preset="temp", budget="AUTO").budget == "auto"
    assert SelectConfig.make(preset="temp", budget=None).budget == "auto"
    cfg = SelectConfig.make(preset="temp")
    with pytest.raises(ValidationError):
        cfg.seed = 1  # frozen
    assert cfg.model_copy(update={"seed": 1}).seed == 1 and cfg.seed == 42


def test_goal_file_is_checked_when_the_config_is_built(tmp_path):
    bad = tmp_path / "g.toml"
    bad.write_text('base = "temp"\nmax_ratoi = 1\n')
    with pytest.raises(ConfigError, match="unknown key"):
        SelectConfig.make(goal=bad)
    good = tmp_path / "ok.toml"
    good.write_text('base = "temp"\nmax_ratio = 0.02\n')
    cfg = SelectConfig.make(goal=good)
    assert cfg.goal == good and cfg.preset is None and cfg.goal_label == str(good)


def test_profile_config_passes_every_profile_keyword():
    """Nothing is dropped: profile_kwargs() names exactly profile()'s options: its explicit keywords
    and the fields of the registry's ProfileConfig (profile(**options) builds one from them)."""
    from gdo.descriptors.config import ProfileConfig as DescriptorConfig
    from gdo.descriptors.profile import profile

    explicit = set(inspect.signature(profile).parameters) - {"paths_or_candidates", "out_dir", "config",
                                                              "executor", "options"}
    params = explicit | (set(DescriptorConfig.model_fields) - {"shard_sizes"})
    kw = ProfileConfig.make(model="m", batch_size=4, device="cuda:1", model_frames=8, trust_remote_code=True,
                            descriptors="motion, fields", k=7).profile_kwargs()
    assert set(kw) == params
    assert (kw["model_batch_size"], kw["device"], kw["model_frames"], kw["trust_remote_code"], kw["k"]) == \
        (4, "cuda:1", 8, True, 7)
    assert kw["descriptors"] == ["motion", "fields"] and kw["model"] == "m"
    with pytest.raises(ConfigError, match="--device"):
        ProfileConfig.make(device="gpu")


def test_select_kwargs_are_select_parameters():
    from gdo.selection.select import select

    params = set(inspect.signature(select).parameters)
    assert set(SelectConfig.make(preset="temp").select_kwargs()) <= params


def test_export_and_report_configs():
    assert ExportConfig.make(formats=["swift,llava", "swift", " LLAMAFACTORY "]).formats == \
        ("swift", "llava", "llamafactory")
    with pytest.raises(ConfigError, match="unknown export format"):
        ExportConfig.make(formats="trl")
    with pytest.raises(ConfigError, match="--examples"):
        ReportConfig.make(examples=-1)
    with pytest.raises(ConfigError, match="--frames"):
        IngestConfig.make(frames=0)


def test_run_config_fans_shared_options_out():
    cfg = RunConfig.from_options(mode="paper", seed=7, frames=16, workers=3, media_root="/m", fmt="llava",
                                 budget="5", device="cpu", batch_size=2, exports="swift")
    assert cfg.select.preset == "temp_plus"  # neither preset nor goal: the default preset
    assert (cfg.profile.mode, cfg.select.mode, cfg.profile.seed, cfg.select.seed) == ("paper", "paper", 7, 7)
    assert (cfg.ingest.frames, cfg.profile.frames, cfg.ingest.workers, cfg.profile.workers) == (16, 16, 3, 3)
    assert str(cfg.ingest.media_root) == str(cfg.profile.media_root) == "/m" and cfg.ingest.fmt == "llava"
    assert (cfg.select.budget, cfg.profile.device, cfg.profile.batch_size, cfg.export.formats) == \
        (5, "cpu", 2, ("swift",))
    with pytest.raises(TypeError):
        RunConfig.from_options(no_such_option=1)  # never dropped silently
    with pytest.raises(ConfigError, match="differs"):
        RunConfig.make(profile=ProfileConfig(mode="paper"), select=SelectConfig(preset="temp"))

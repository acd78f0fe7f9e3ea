"""The CLI is pleasant: --version, help readable at 80 columns, presets explained, warnings on
stderr, --strict turns unmet constraints into exit status 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gdo import __version__
from gdo.cli import app

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "demo_pool"
COMMANDS = ("ingest", "profile", "select", "presets", "run", "report", "tiny-model")


def _invoke(*args, width=80):
    return CliRunner().invoke(app, list(map(str, args)), terminal_width=width, env={"COLUMNS": str(width)})


def test_version():
    for flag in ("--version", "-V"):
        r = _invoke(flag)
        assert r.exit_code == 0 and r.output.strip() == f"gdo {__version__}"


@pytest.mark.parametrize("cmd", [None, *COMMANDS])
def test_help_fits_80_columns_and_is_not_cut(cmd):
    r = _invoke(*([cmd] if cmd else []), "--help")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(x) for x in lines) <= 80, [x for x in lines if len(x) > 80][:2]
    assert "…" not in r.output and "╭" not in r.output
    if cmd == "run":
        assert "Qwen3-VL-8B-Instruct" in r.output and "--export-context" in r.output and "--strict" in r.output


def test_presets_explain_every_parameter():
    from gdo.cli.presets import PARAM_HELP
    from gdo.selection.presets import PRESET_PARAMS

    r = _invoke("presets")
    assert r.exit_code == 0
    assert max(len(x) for x in r.output.splitlines()) <= 80
    assert set(PARAM_HELP) == set(PRESET_PARAMS)
    for p in PRESET_PARAMS:
        # the parameter's explanation line: name then its one-line help
        assert any(line.startswith(p + " ") and PARAM_HELP[p] in line for line in r.output.splitlines()), p


def test_select_warns_and_strict_exits_3(tmp_path):
    """Images only (no video) under temp_plus: min_video cannot be met. Without --descriptors the
    run is also weakened: both say so on stderr; --strict makes it exit 3."""
    pool = [POOL / "llamafactory_image_qa.json", POOL / "llava_image_captions.json"]
    r = CliRunner().invoke(app, ["select", *map(str, pool), "-p", "temp_plus", "--budget", "6",
                                 "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "warning: Selected without descriptors" in r.output
    assert "constraint(s) unmet" in r.output and "min_video" in r.output
    rj = json.loads((tmp_path / "a" / "report.json").read_text())
    assert any(c["name"] == "min_video" and not c["met"] for c in rj["constraints"])
    assert (tmp_path / "a" / "scores.parquet").exists()
    r = CliRunner().invoke(app, ["select", *map(str, pool), "-p", "temp_plus", "--budget", "6",
                                 "--out", str(tmp_path / "b"), "--strict"])
    assert r.exit_code == 3, r.output
    assert "--strict: " in r.output


def test_run_strict_exits_3(tmp_path):
    pool = [POOL / "llamafactory_image_qa.json"]
    args = ["run", *map(str, pool), "-p", "temp_plus", "--budget", "4", "--out", str(tmp_path / "r"), "-q",
            "--no-thumbnails"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, args + ["--strict"])
    assert r.exit_code == 3, r.output

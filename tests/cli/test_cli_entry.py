"""The command line is reachable as ``python -m gdo`` and lists every command."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_gdo_lists_every_command():
    r = subprocess.run([sys.executable, "-m", "gdo", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in ("ingest", "profile", "select", "presets", "run", "report", "tiny-model"):
        assert cmd in r.stdout

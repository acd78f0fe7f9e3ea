"""`gdo presets` (placeholder: replaced by the module's owner)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the command to app."""

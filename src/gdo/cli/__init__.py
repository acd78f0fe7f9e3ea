"""The ``gdo`` command line. Each sub-command lives in its own module with a ``register(app)``.

Modules must import heavy libraries (torch, transformers, cv2, av) inside the command
function, never at module level, so ``gdo --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="gdo",
    help="Goal-driven data optimization for multimodal (image + video) instruction-tuning pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = ("ingest", "profile", "select", "presets", "run", "report", "tiny_model")
_COMMAND_MODULES += ("compare",)  # issue 16
_COMMAND_MODULES += ("train_plan",)  # issue 16

for _name in _COMMAND_MODULES:
    importlib.import_module(f"gdo.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``gdo`` console script."""
    app()

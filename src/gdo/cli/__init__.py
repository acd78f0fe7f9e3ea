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
    rich_markup_mode=None,  # plain click help: readable and unclipped at 80 columns
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)

def _version(value: bool) -> None:
    if value:
        from gdo import __version__

        typer.echo(f"gdo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the gdo version and exit."),
) -> None:
    """Goal-driven data optimization for multimodal (image + video) instruction-tuning pools.

    Start with `gdo run POOL... --out DIR` (ingest, profile, select, export, report in one go), or run
    the stages one by one: ingest, profile, select, report. `gdo presets` explains the goal presets.
    """


_COMMAND_MODULES = ("ingest", "profile", "select", "presets", "run", "report", "tiny_model")
_COMMAND_MODULES += ("compare",)  # issue 16
_COMMAND_MODULES += ("train_plan",)  # issue 16

for _name in _COMMAND_MODULES:
    importlib.import_module(f"gdo.cli.{_name}").register(app)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point of the ``gdo`` console script. SIGTERM (``kill``, a preempted job) ends it as
    Ctrl-C does, through the commands' cleanup (profile removes its scratch folder; finished shards
    stay for the resume), with exit status 143."""
    import signal

    try:
        signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    app()

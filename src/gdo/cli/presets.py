"""`gdo presets [--json] [--mode paper|default]`: print the goal presets (GDO_METHOD.md section 6)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``presets`` command to ``app``."""

    @app.command("presets")
    def presets_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per preset) instead of a table."),
        mode: str = typer.Option("default", "--mode",
                                 help="Resolve temporal_categories for this mode (paper: Temporal,Mixed; "
                                      "default: Temporal, judged)."),
    ) -> None:
        """Show the four presets of the paper with every parameter."""
        from gdo.selection.presets import PRESET_PARAMS, preset_rows
        from gdo.utils.io import dumps_json

        if mode not in ("default", "paper"):
            typer.echo(f"error: --mode must be default or paper, not {mode!r}", err=True)
            raise typer.Exit(2)
        rows = preset_rows(mode)
        if as_json:
            typer.echo(dumps_json(rows).decode("utf-8"), nl=False)
            return
        names = [r["name"] for r in rows]

        def fmt(v):
            if isinstance(v, (list, tuple)):
                return ",".join(map(str, v))
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)

        w0 = max(len(p) for p in PRESET_PARAMS)
        cells = [[fmt(r[p]) for r in rows] for p in PRESET_PARAMS]
        ws = [max(len(names[i]), *(len(c[i]) for c in cells)) for i in range(len(names))]
        typer.echo("parameter".ljust(w0) + "  " + "  ".join(n.rjust(w) for n, w in zip(names, ws)))
        typer.echo("-" * (w0 + 2 + sum(ws) + 2 * (len(ws) - 1)))
        for p, c in zip(PRESET_PARAMS, cells):
            typer.echo(p.ljust(w0) + "  " + "  ".join(v.rjust(w) for v, w in zip(c, ws)))

"""`gdo presets [--json] [--mode paper|default]`: print the goal presets (docs/METHOD.md section 6)
and one line per parameter saying what it does."""

from __future__ import annotations

import typer


#: One line per preset parameter (docs/METHOD.md sections 5-6); kept under 80 columns with the name.
PARAM_HELP: dict[str, str] = {
    "relevance_weight": "goal set: w in score' = (1-w) score + w (2r - 1)",
    "quota_lean": "goal set: quotas lean this far to relevant strata",
    "goal_budget_per_item": "goal set: auto budget per goal item (target)",
    "min_count": "auto budget: at least this many candidates",
    "max_count": "auto budget: at most this many candidates",
    "min_ratio": "auto budget: at least ceil(N x min_ratio)",
    "max_ratio": "auto budget: at most floor(N x max_ratio)",
    "effective_strata_mult": "n_eff = ceil(effective strata E x this)",
    "coverage_mass": "pool share the covered strata reach (n_tail)",
    "tail_target": "n_tail = ceil(this / p of last covered stratum)",
    "vds3_target_positive": "VDS step: aim for this many vds3' > threshold",
    "vds3_threshold": "vds3' above this counts as visually dependent",
    "vds3_max_mult": "VDS step grows the budget at most x this",
    "min_video_ratio": "at least ceil(ratio x n) videos in the subset",
    "max_video_ratio": "at most floor(ratio x n) videos in the subset",
    "min_temporal_in_video_ratio": "temporal videos >= ratio x video minimum",
    "oversample": "image strata keep the top ceil(quota x this)",
    "video_oversample": "video strata keep the top ceil(quota x this)",
    "temporal_oversample": "temporal video strata keep ceil(quota x this)",
    "source_floor_topk": "source floors for the k largest source groups",
    "min_source_group_ratio": "source floor: at least ceil(n x ratio) ...",
    "source_floor_frac_of_expected": "... and >= this share of its expected count",
    "temporal_categories": "temporal categories counted as temporal videos",
    "frames": "T: frames a video is sampled to",
    "max_qa_per_video": "at most this many picks per video",
    "seed": "seed of tie draws, random fill and the baseline",
    "baseline_mult": "Uni-Nx baseline: N = this (baseline size N x n)",
}


def register(app: typer.Typer) -> None:
    """Add the ``presets`` command to ``app``."""

    @app.command("presets")
    def presets_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per preset) instead of a table."),
        mode: str = typer.Option("default", "--mode",
                                 help="Resolve temporal_categories for this mode (paper: Temporal,Mixed; "
                                      "default: Temporal, judged)."),
    ) -> None:
        """Show the paper's four presets and target (goal sets) with every parameter."""
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
        typer.echo("parameter".ljust(w0) + " " + " ".join(n.rjust(w) for n, w in zip(names, ws)))
        typer.echo("-" * (w0 + 1 + sum(ws) + (len(ws) - 1)))
        for p, c in zip(PRESET_PARAMS, cells):
            typer.echo(p.ljust(w0) + " " + " ".join(v.rjust(w) for v, w in zip(c, ws)))
        typer.echo("")
        typer.echo("What each parameter does (docs/METHOD.md sections 5-6):")
        for p in PRESET_PARAMS:
            typer.echo(f"{p.ljust(w0)}  {PARAM_HELP.get(p, '')}".rstrip())
        typer.echo("")
        import textwrap

        for r in rows:
            typer.echo(textwrap.fill(r.get("description") or r["name"], 78, initial_indent="  ",
                                     subsequent_indent="    "))

"""Self-contained HTML page of a comparison (``compare.html``): the frontier plot per benchmark.

Each benchmark gets one accuracy-versus-samples plot (matplotlib, Agg backend, inline SVG) with
both runs' checkpoints, the baseline's best as a horizontal line and the peak match marked, and a
table of the figures of ``compare.json``. The page references no network resource; text is
escaped by jinja2's autoescaping.
"""

from __future__ import annotations

import io
from typing import Any

import jinja2

from gdo import __version__

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gdo compare: {{ r.gdo_run }} vs {{ r.baseline_run }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.bad{color:#b00020;font-weight:600}.note{color:#8a5a00}
.plot svg{max-width:100%;height:auto}
</style></head><body>
<h1>Training comparison: {{ r.gdo_run }} vs {{ r.baseline_run }}</h1>
<p>Accuracy (percent) against training samples seen. <b>Peak match</b>: samples seen by
{{ r.gdo_run }} when it first reaches {{ r.baseline_run }}'s best accuracy (linear interpolation between
the two checkpoints around the crossing); <b>reduction</b> = {{ r.baseline_run }} size / peak match.
A baseline that never gained {{ margin }} pp over the starting checkpoint is marked <span class="bad">invalid</span>.</p>
<table><tr><th class="l">benchmark</th><th>{{ r.gdo_run }} best</th><th>{{ r.gdo_run }} final</th>
<th>{{ r.baseline_run }} best</th><th>{{ r.baseline_run }} final</th><th>&Delta; final (pp)</th>
<th>&Delta; best (pp)</th><th>peak match (samples)</th><th>reduction</th><th class="l">validity</th></tr>
{% for b in r.benchmarks %}<tr><td class="l">{{ b.benchmark }}</td><td>{{ "%.2f"|format(b.gdo.best) }}</td>
<td>{{ "%.2f"|format(b.gdo.final) }}</td><td>{{ "%.2f"|format(b.baseline.best) }}</td>
<td>{{ "%.2f"|format(b.baseline.final) }}</td><td>{{ "%+.2f"|format(b.delta_final) }}</td>
<td>{{ "%+.2f"|format(b.delta_best) }}</td>
<td>{% if b.peak_match is none %}not reached{% else %}{{ "{:,.0f}".format(b.peak_match) }}{% if b.peak_match_bound == "upper" %} (upper bound){% endif %}{% endif %}</td>
<td>{% if b.reduction is none %}-{% else %}{{ "%.1f"|format(b.reduction) }}x{% endif %}</td>
<td class="l">{% if b.valid is false %}<span class="bad">invalid</span>{% elif b.valid is none %}unknown{% else %}ok{% endif %}</td></tr>
{% endfor %}</table>
{% for w in warnings %}<p class="note">warning: {{ w }}</p>{% endfor %}
{% for b, svg in plots %}<h2>{{ b.benchmark }}</h2>
{% for n in b.notes %}<p class="note">{{ n }}</p>{% endfor %}
<div class="plot">{{ svg|safe }}</div>{% endfor %}
<p style="color:#777;font-size:small">gdo {{ version }} &middot; figures in compare.json</p>
</body></html>
"""


def _plot_svg(b: dict[str, Any], gdo_run: str, baseline_run: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "gdo-compare-" + b["benchmark"]  # stable, page-unique ids
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for key, label, colour in (("gdo", gdo_run, "#d62728"), ("baseline", baseline_run, "#1f77b4")):
        pts = b[key]["points"]
        if b["start"] is not None and (not pts or pts[0][0] > 0):
            pts = [[0.0, b["start"]["accuracy"]]] + pts
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=4, color=colour, label=label)
    ax.axhline(b["target"], color="#1f77b4", ls=":", lw=1, label=f"{baseline_run} best {b['target']:.2f}")
    if b["peak_match"] is not None:
        ax.axvline(b["peak_match"], color="#d62728", ls="--", lw=1,
                   label=f"peak match {b['peak_match']:,.0f}"
                   + (f" ({b['reduction']:.1f}x)" if b["reduction"] is not None else ""))
    ax.set_xlabel("training samples seen")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(b["benchmark"] + ("  [baseline invalid]" if b["valid"] is False else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.find("<svg"):]  # drop the XML prolog and DOCTYPE (not allowed inside HTML)


def render_compare_html(result: dict[str, Any], warnings: list[str] | None = None) -> str:
    """Render ``result`` (``compare_curves`` output) as a self-contained HTML page (a string)."""
    env = jinja2.Environment(autoescape=True)
    plots = [(b, _plot_svg(b, result["gdo_run"], result["baseline_run"])) for b in result["benchmarks"]]
    margin = result["benchmarks"][0]["margin_pp"] if result["benchmarks"] else 0
    return env.from_string(_TEMPLATE).render(r=result, plots=plots, warnings=warnings or [],
                                              margin=f"{margin:g}", version=__version__)

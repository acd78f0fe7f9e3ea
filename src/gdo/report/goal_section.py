"""The "Goal coverage" block of report.html (issue 15): a self-contained HTML fragment.

Rendered from report.json's ``goal`` object (built by :meth:`gdo.selection.relevance.GoalContext.report`):
the relevance histogram of pool, subset and baseline (matplotlib, embedded PNG), the share of
each set near the goal, and for each listed goal item its nearest picked candidates with a
thumbnail when the candidate's media can be read. Returns "" when the run had no goal set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from markupsafe import Markup, escape


def relevance_plot(hist: dict[str, Any], png_uri) -> str | None:
    """PNG data URI (made by ``png_uri(fig)``): relevance histograms (densities) of pool, subset
    and baseline, or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = np.asarray(hist.get("bins") or [], dtype=float)
    if bins.size < 2:
        return None
    centers = (bins[:-1] + bins[1:]) / 2
    w = (bins[1] - bins[0]) / 3.2
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for k, (name, color) in enumerate((("pool", "#999999"), ("subset", "#1f77b4"), ("baseline", "#ff7f0e"))):
        h = np.asarray(hist.get(name) or [], dtype=float)
        if h.sum() > 0:
            ax.bar(centers + (k - 1) * w, h / h.sum(), width=w, color=color, label=name)
    ax.set_xlabel("goal relevance")
    ax.set_ylabel("share")
    ax.legend(fontsize=8)
    uri = png_uri(fig)
    plt.close(fig)
    return uri


def render_goal_section(goal: dict[str, Any] | None, media_of=None, thumbnails: bool = True,
                        max_items: int = 20, *, thumbnail_strip=None, png_uri=None) -> Markup:
    """HTML block for ``goal`` (report.json); ``media_of(uid) -> (media_kind, media paths) | None``;
    ``thumbnail_strip`` and ``png_uri`` are report.html's helpers (gdo.report.html passes them)."""
    if not goal:
        return Markup("")

    e = escape
    ns = goal.get("near_share") or {}
    rm = goal.get("relevance_mean") or {}
    parts = ["<h2>Goal coverage</h2>",
             f"<p>Goal set: {e(goal.get('items'))} items from {e(', '.join(goal.get('files') or []))}; "
             f"relevance spaces: {e(', '.join(goal.get('spaces') or []))}; relevance weight "
             f"{e(goal.get('relevance_weight'))}, quota lean {e(goal.get('quota_lean'))}. "
             f"{e(goal.get('relevance_rule') or '')}.</p>",
             "<table><tr><th></th><th>pool</th><th>subset</th><th>baseline</th></tr>",
             f"<tr><td>share near the goal (cosine &ge; {e(goal.get('near_threshold_cosine'))})</td>"
             + "".join(f"<td class=\"num\">{e(ns.get(k))}</td>" for k in ("pool", "subset", "baseline")) + "</tr>",
             "<tr><td>mean relevance</td>"
             + "".join(f"<td class=\"num\">{e(rm.get(k))}</td>" for k in ("pool", "subset", "baseline")) + "</tr>",
             "</table>"]
    for note in goal.get("notes") or []:
        parts.append(f"<div class=\"note\">{e(note)}</div>")
    plot = relevance_plot(goal.get("relevance_hist") or {}, png_uri) if png_uri is not None else None
    if plot:
        parts.append(f"<img class=\"plot\" alt=\"goal relevance histograms\" src=\"{e(plot)}\">")
    items = (goal.get("goal_items") or [])[:max_items]
    if items:
        parts.append("<h3>Nearest picked candidates per goal item</h3><table><tr><th>goal item</th>"
                     "<th>nearest picked (cosine)</th></tr>")
        for it in items:
            cells = []
            for p in it.get("nearest_picked") or []:
                thumb = ""
                if thumbnails and media_of is not None and thumbnail_strip is not None:
                    m = media_of(p.get("uid"))
                    if m:
                        uri = thumbnail_strip(m[0], m[1], n=1, height=48)
                        if uri:
                            thumb = f"<img alt=\"{e(p.get('uid'))}\" src=\"{e(uri)}\"> "
                cells.append(f"<div>{thumb}<code>{e(p.get('uid'))}</code> ({e(p.get('cosine'))}): "
                             f"{e((p.get('question') or '')[:200])} &rarr; {e((p.get('answer') or '')[:120])}</div>")
            parts.append(f"<tr><td>{e(it.get('origin'))}: {e((it.get('question') or '')[:200])}</td>"
                         f"<td>{''.join(cells)}</td></tr>")
        parts.append("</table>")
    return Markup("\n".join(parts))

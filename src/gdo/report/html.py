"""Self-contained HTML report of a selection run (``DIR/report.html``).

Reads what the earlier stages left in a run folder:

- ``report.json`` (selection: budget math, constraint status, counts, JSD; required),
- ``selection.jsonl`` (one line per chosen candidate: uid, set gdo|baseline, score, stage; required),
- ``candidates.parquet`` (ingest; optional but needed for thumbnails and field plots),
- ``descriptors.parquet`` (profile; optional, needed for descriptor histograms),
- ``scores.parquet`` (optional: uid, score for every candidate; when absent, the top/bottom lists
  use the scores in selection.jsonl).

and writes one HTML file with every plot (matplotlib, Agg backend) and every thumbnail embedded
as a base64 ``data:`` URI; the page references no network resource. Rendering uses jinja2 with
autoescaping, so pool text cannot inject markup.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gdo import __version__
from gdo.utils.io import write_text_atomic

#: Numeric descriptor columns plotted as histograms (descriptors.parquet), with a short meaning.
HIST_DESCRIPTORS: dict[str, str] = {
    "vds": "visual dependency, loss_blind - loss_video (nats/token)",
    "ppl": "perplexity of the answer, exp(loss_video) (log10 axis)",
    "sc": "self-consistency of 5 sampled answers (Jaccard)",
    "tnc_judge": "temporal necessity, model judge",
    "tnc": "temporal necessity (judge, else text classifier)",
    "amm": "average motion magnitude (px, Farneback)",
    "frame_diversity": "mean |gray_t - gray_t-1| / 255",
    "cluster_rep": "cluster representativeness exp(-d)",
    "cluster_hard": "1 - cluster_rep",
    "loss_video": "answer loss with the visual input",
    "loss_blind": "answer loss without the visual input",
    "n_frames": "frames the model sees",
    "duration_s": "video duration (s)",
}

#: Score terms of scores.parquet shown in the subset table (docs/METHOD.md section 5).
SCORE_TERMS = ("base_norm", "vds3p", "qp")
#: Descriptors shown in the subset table when the run has them.
TABLE_DESCRIPTORS = ("vds", "tnc", "amm", "frame_diversity", "cluster_rep")
#: At most this many rows per set in the subset table (by score; selection.jsonl lists all).
MAX_TABLE_ROWS = 5000
#: At most this many one-frame thumbnails in the subset table.
MAX_TABLE_THUMBS = 120

#: Stratum fields (docs/METHOD.md section 5), in display order.
FIELDS = ("bucket", "duration_bucket", "temporal_category", "question_form", "q_len_bucket",
          "a_len_bucket", "source_group")

_FILES = (
    ("candidates.parquet", "one row per (question, answer) candidate (ingest)"),
    ("rejects.jsonl", "rows and candidates that could not be used, with reasons"),
    ("ingest.json", "per-file ingestion counts"),
    ("descriptors.parquet", "the descriptors of every candidate (profile)"),
    ("subset.jsonl", "the GDO subset, rows in the pool's own format"),
    ("baseline.jsonl", "the Uni-Nx random baseline, same format"),
    ("selection.jsonl", "one line per chosen candidate: uid, set, score, stage"),
    ("scores.parquet", "every candidate: score, its terms, stratum, and why it was left out"),
    ("report.json", "budget math, counts, constraint status (machine-readable)"),
    ("report.html", "this page"),
)


# ----------------------------------------------------------------------------- inputs
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{i}: not valid JSON ({e.msg})") from e
    return out


def _read_table(path: Path | None) -> pa.Table | None:
    if path is None or not Path(path).exists():
        return None
    return pq.read_table(path)


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    """The value of the first key of ``keys`` present in ``d`` (dotted keys walk nested dicts)."""
    for key in keys:
        cur: Any = d
        for part in key.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                break
        else:
            return cur
    return default


# ----------------------------------------------------------------------------- formatting
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out: list[tuple[str, Any]] = []
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [(prefix, d)]


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg_uri(arr: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ----------------------------------------------------------------------------- plots
#: Plot text sizes in points; PNGs are saved at 100 dpi and shown at 1x, so 10 pt is ~14 px.
FONT_PT = 11
SMALL_PT = 10
_DPI = 100
_COLORS = {"pool": "#7a8599", "subset": "#d9480f", "baseline": "#1c7ed6"}
#: Tried in this order; missing families are skipped. The CJK families give Chinese/Japanese/Korean
#: source names and questions glyphs when such a font is installed (e.g. fonts-noto-cjk).
_FONT_FALLBACK = ("DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                  "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN",
                  "Arial Unicode MS")


def _plt():
    """matplotlib.pyplot on the Agg backend with the report's fonts (sizes, CJK-capable fallback)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    families = [f for f in _FONT_FALLBACK if f in have] or ["sans-serif"]
    plt.rcParams.update({"font.family": families, "font.size": FONT_PT, "axes.titlesize": FONT_PT,
                         "axes.labelsize": FONT_PT, "xtick.labelsize": SMALL_PT, "ytick.labelsize": SMALL_PT,
                         "legend.fontsize": SMALL_PT, "figure.dpi": _DPI})
    return plt


def _figure_legend(fig, axes) -> None:
    """One legend for the whole figure, above the plots (never over the data)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab.split(" (n=")[0], (h, lab))
    if seen:
        handles, labels = zip(*seen.values())
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False,
                   bbox_to_anchor=(0.5, 1.0))


#: Natural order of the stratum field labels (docs/METHOD.md section 5).
_NATURAL = {
    "bucket": ("image_qa", "short_video", "video", "text"),
    "duration": ("image", "very_short", "short", "medium", "long", "very_long"),
    "temporal": ("Temporal", "Mixed", "Static"),
    "question_form": ("Open", "MCQ"),
    "q_len": ("tiny", "short", "medium", "long", "very_long"),
}
_FIELD_ALIASES = {"duration_bucket": "duration", "temporal_category": "temporal", "q_len_bucket": "q_len",
                  "a_len_bucket": "a_len"}
#: Display order of the seven stratum fields.
FIELD_ORDER = ("bucket", "duration", "temporal", "question_form", "q_len", "a_len", "source_group")


def natural_order(field: str, counts: dict[str, int]) -> list[str]:
    """The labels of ``counts`` in their natural order: known orders (durations short to long,
    lengths tiny to very_long, Temporal/Mixed/Static), thresholds like ``a<=2 < a<=8 < a>64`` by
    number, other fields (source groups) by descending count; "(none)"/"(missing)" last."""
    import re

    f = _FIELD_ALIASES.get(field, field)
    known = _NATURAL.get(f, ())

    def key(lab: str):
        if lab in ("(none)", "(missing)", ""):
            return (3, 0, 0, lab)
        if lab in known:
            return (0, known.index(lab), 0, lab)
        m = re.fullmatch(r"[A-Za-z_ ]*(<=|<|>=|>)\s*(\d+(?:\.\d+)?)", lab)
        if m:
            return (1, float(m.group(2)), 1 if m.group(1).startswith(">") else 0, lab)
        return (2, -counts.get(lab, 0), 0, lab)

    return sorted(counts, key=key)


def _wrap(label: str, width: int = 30) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width, break_long_words=True)) or label


def descriptor_histograms(pool: dict[str, np.ndarray], subset_mask: np.ndarray) -> tuple[str | None, list[str]]:
    """Small-multiple histograms, pool vs subset, of each descriptor with data.

    Args:
        pool: column name -> float array (NaN for null), one value per pool candidate.
        subset_mask: bool array, True where the candidate is in the subset.

    Returns:
        (PNG data URI or None when nothing has data, names of descriptors with no data).
    """
    plt = _plt()

    have, missing = [], []
    for name in HIST_DESCRIPTORS:
        if name not in pool:
            continue
        vals = pool[name]
        (have if np.isfinite(vals).any() else missing).append(name)
    if not have:
        return None, missing
    ncol = 3
    nrow = math.ceil(len(have) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, 3.1 * nrow + 0.4), squeeze=False)
    for ax in axes.flat[len(have):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, have):
        vals = pool[name].astype(float)
        if name == "ppl":
            vals = np.where(vals > 0, np.log10(np.where(vals > 0, vals, 1.0)), np.nan)
        ok = np.isfinite(vals)
        lo, hi = (float(np.min(vals[ok])), float(np.max(vals[ok])))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 21)
        ax.hist(vals[ok], bins=bins, density=True, alpha=0.45, color=_COLORS["pool"], label="pool")
        sub = ok & subset_mask
        if sub.any():
            ax.hist(vals[sub], bins=bins, density=True, histtype="step", linewidth=2, color=_COLORS["subset"],
                    label="subset")
        ax.set_title(f"{name} (pool n={int(ok.sum())}, subset n={int(sub.sum())})")
        ax.set_xlabel(_wrap(HIST_DESCRIPTORS[name], 40), fontsize=SMALL_PT)
        ax.set_ylabel("density")
    _figure_legend(fig, axes.flat)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (3.1 * nrow + 0.4)))
    uri = _png_uri(fig)
    plt.close(fig)
    return uri, missing


def score_plot(stats: dict[str, Any]) -> str | None:
    """Step histograms of the selection score terms (report.json ``descriptor_stats``), three sets.

    Args:
        stats: ``descriptor_stats`` of report.json: name -> {bins (21 edges), pool, subset, baseline
            (20 counts each)}; plots ``score``, ``quality`` and ``vds3p`` when present.

    Returns:
        PNG data URI, or None when none of them has counts.
    """
    plt = _plt()

    names = [n for n in ("score", "quality", "vds3p")
             if isinstance(stats.get(n), dict) and stats[n].get("bins") and sum(stats[n].get("pool") or []) > 0]
    if not names:
        return None
    titles = {"score": "candidate score", "quality": "quality score (section 4)", "vds3p": "vds3' term"}
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names) + 0.4, 3.4), squeeze=False)
    for ax, n in zip(axes.flat, names):
        st = stats[n]
        edges = np.asarray(st["bins"], dtype=float)
        ns = []
        for s in ("pool", "subset", "baseline"):
            counts = np.asarray(st.get(s) or [], dtype=float)
            if counts.size != edges.size - 1 or counts.sum() == 0:
                continue
            dens = counts / counts.sum()
            ns.append(f"{s} {int(counts.sum())}")
            if s == "pool":
                ax.bar(edges[:-1], dens, width=np.diff(edges), align="edge", color=_COLORS[s], alpha=0.45, label=s)
            else:
                ax.step(edges, np.append(dens, dens[-1]), where="post", color=_COLORS[s], linewidth=2, label=s)
        ax.set_title(titles[n])
        ax.set_xlabel(f"{n} (n: {', '.join(ns)})", fontsize=SMALL_PT)
        ax.set_ylabel("share of the set")
    _figure_legend(fig, axes.flat)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    uri = _png_uri(fig)
    plt.close(fig)
    return uri


def field_share_plot(fields: dict[str, dict[str, dict[str, int]]]) -> str | None:
    """Grouped horizontal bars of each field's value shares in pool / subset / baseline.

    Args:
        fields: field -> set name ("pool", "subset", "baseline") -> value -> count.

    Returns:
        PNG data URI, or None when there are no fields.
    """
    plt = _plt()

    names = [f for f in fields if fields[f].get("pool")]
    if not names:
        return None
    ncol = 2
    nrow = math.ceil(len(names) / ncol)
    heights = [max(len(fields[f]["pool"]), 1) for f in names]
    row_h = [max(heights[i:i + ncol]) * 0.42 + 1.3 for i in range(0, len(names), ncol)]
    total_h = sum(row_h) + 0.5
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, total_h), squeeze=False,
                             gridspec_kw={"height_ratios": row_h})
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, f in zip(axes.flat, names):
        values = natural_order(f, fields[f]["pool"])
        y = np.arange(len(values))
        w = 0.27
        for j, s in enumerate(("pool", "subset", "baseline")):
            counts = fields[f].get(s) or {}
            tot = sum(counts.values())
            shares = [counts.get(v, 0) / tot if tot else 0.0 for v in values]
            ax.barh(y + (j - 1) * w, shares, height=w, color=_COLORS[s], label=s)
        ax.set_yticks(y, [_wrap(str(v), 28) for v in values])
        ax.invert_yaxis()
        ax.set_title(f)
        ax.set_xlabel("share of the set")
        ax.set_ylabel(f, labelpad=10)
    _figure_legend(fig, axes.flat)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / total_h))
    uri = _png_uri(fig)
    plt.close(fig)
    return uri


# ----------------------------------------------------------------------------- thumbnails
def _fallback_frames(media_kind: str, media: Sequence[str], n: int) -> np.ndarray:
    """Decode up to ``n`` frames without gdo.media's decoder (PIL for images, PyAV for videos), picked
    with gdo.media's one index rule."""
    from PIL import Image

    from gdo.media import sample_indices

    if media_kind in ("image", "frames"):
        paths = list(media)
        if media_kind == "frames" and len(paths) > n:
            paths = [paths[i] for i in sample_indices(len(paths), n)]
        return np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224))) for p in paths[:n]])
    import av

    with av.open(media[0]) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = sample_indices(len(frames), n)
    return np.stack([np.asarray(Image.fromarray(frames[i]).resize((224, 224))) for i in idx])


def thumbnail_strip(media_kind: str, media: Sequence[str], n: int = 4, height: int = 96) -> str | None:
    """A JPEG data URI of up to ``n`` frames side by side (images: up to ``n`` images), or None.

    Frames come from :func:`gdo.media.load_frames` when available (uniform sampling, the
    GDO index rule), else from a small PIL/PyAV fallback. Returns None for text-only candidates;
    raises nothing for unreadable media (returns None).
    """
    from PIL import Image

    from gdo.media import sample_indices

    if media_kind not in ("image", "frames", "video") or not media:
        return None
    frames = None
    try:
        from gdo.media import load_frames

        frames = load_frames(media_kind, list(media), frames=n)
    except Exception:  # noqa: BLE001 - the ingest module may be absent or reject the call
        frames = None
    if frames is None or len(frames) == 0:
        try:
            frames = _fallback_frames(media_kind, media, n)
        except Exception:  # noqa: BLE001 - unreadable media: no thumbnail, the page says so
            return None
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if len(frames) > n:
        frames = frames[sample_indices(len(frames), n)]
    tiles = []
    for fr in frames:
        im = Image.fromarray(np.ascontiguousarray(fr[..., :3]).astype(np.uint8))
        w = max(1, round(im.width * height / im.height))
        tiles.append(np.asarray(im.resize((min(w, 2 * height), height))))
    strip = np.concatenate(tiles, axis=1)
    return _jpeg_uri(strip)


# ----------------------------------------------------------------------------- assembly
_MEDIA_FLAG_TEXT = {
    "partial": "fewer frames decode than the file promises; sampled over the frames that exist",
    "vfr": "variable frame rate; frames sampled uniformly in time from timestamps",
    "rotated": "display rotation applied; frames are upright",
    "upscaled": "a side under 28 px; the model's processor upscales it",
    "animated": "animated image used as an image; its first frame is used",
    "no_timestamps": "no frame timestamps; sampled by index",
}


def _media_flag_rows(rep: dict[str, Any]) -> list[tuple[str, int, str]] | None:
    """(flag, candidates, meaning) rows from report.json ``media_flags`` (None when absent)."""
    flags = rep.get("media_flags") if isinstance(rep, dict) else None
    if not isinstance(flags, dict):
        return None
    return [(str(k), int(v), _MEDIA_FLAG_TEXT.get(str(k), "")) for k, v in sorted(flags.items())]


_CONSTRAINT_ORDER = ("constraint", "name", "group", "kind", "required", "available", "achieved", "met", "feasible",
                     "shortfall")


def _constraint_table(cons: Any) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Normalise report.json's constraint block (list of dicts, or dict name -> dict/value)."""
    if not cons:
        return [], []
    if isinstance(cons, dict):
        items = []
        for k, v in cons.items():
            items.append({"constraint": k, **v} if isinstance(v, dict) else {"constraint": k, "value": v})
    elif isinstance(cons, list):
        items = [c if isinstance(c, dict) else {"constraint": c} for c in cons]
    else:
        return [], []
    headers: list[str] = [h for h in _CONSTRAINT_ORDER if any(h in it for it in items)]
    for it in items:
        for k in it:
            if k not in headers:
                headers.append(k)
    rows = []
    for it in items:
        row = []
        for h in headers:
            v = it.get(h)
            if h == "group" and v == "":
                v = "(none)"
            cls = ""
            if h in ("met", "ok", "satisfied", "status") and v is not None:
                good = v is True or str(v).lower() in ("met", "ok", "true", "satisfied", "yes")
                cls = "ok" if good else "bad"
            row.append({"text": _fmt(v), "num": isinstance(v, (int, float)) and not isinstance(v, bool), "cls": cls})
        rows.append(row)
    return headers, rows


def _constraint_status(cons: Any) -> tuple[int, int]:
    """(met, total) over a constraint block; unknown status counts as met."""
    _, rows = _constraint_table(cons)
    total = len(rows)
    bad = sum(1 for r in rows if any(c["cls"] == "bad" for c in r))
    return total - bad, total


def _column_float(t: pa.Table, name: str) -> np.ndarray:
    col = t.column(name)
    if pa.types.is_boolean(col.type):
        col = col.cast(pa.int8())
    try:
        arr = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.full(t.num_rows, np.nan)
    return np.asarray(arr, dtype=float)


def _vocab_size(run: Path, model_id: Any) -> int | None:
    """vocab_size of the reference model when its config.json can be found (the model id of
    descriptors.meta.json is ``NAME@hash``; NAME is tried as a path and inside the run folder)."""
    if not isinstance(model_id, str) or not model_id:
        return None
    name = model_id.split("@")[0]
    for d in (Path(name), run / name, run / Path(name).name):
        cfg = d / "config.json"
        if cfg.is_file():
            try:
                c = json.loads(cfg.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
            v = c.get("vocab_size") or (c.get("text_config") or {}).get("vocab_size")
            return int(v) if isinstance(v, (int, float)) and v > 1 else None
    return None


def warning_inputs(run: Path, descriptors_path: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """The descriptor columns and descriptors.meta.json that :func:`run_warnings` reads, from a run
    folder (``descriptors.parquet`` there, or ``descriptors_path``); empty when absent."""
    import pyarrow.parquet as pq

    d = Path(descriptors_path) if descriptors_path else Path(run) / "descriptors.parquet"
    cols: dict[str, np.ndarray] = {}
    meta: dict = {}
    if d.is_file():
        names = pq.ParquetFile(d).schema_arrow.names
        want = [c for c in ("tnc_judge", "loss_video") if c in names]
        if want:
            t = pq.read_table(d, columns=want)
            cols = {c: np.asarray(t[c].to_numpy(zero_copy_only=False), dtype=np.float64) for c in want}
        meta = _read_meta(d.with_name("descriptors.meta.json"))
    return cols, meta


def _read_meta(path: Path) -> dict[str, Any]:
    """descriptors.meta.json as a dict; {} when absent or unreadable."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def run_warnings(rj: dict[str, Any], *, columns: dict[str, np.ndarray] | None = None,
                 meta: dict[str, Any] | None = None, run: Path | None = None) -> list[dict[str, str]]:
    """What weakens a run, as ``[{"title", "text"}]``, most serious first.

    Reads report.json (``rj``) and, when given, the descriptor columns (name -> float (N,), NaN
    for null) and descriptors.meta.json. Checks: unmet constraints; the Uni-Nx baseline capped
    by the pool (round(mult x n) > N); selection without descriptors (or with candidates lacking a
    descriptor row); every TNC judge answer "unclear" (0.5); a model that looks untrained (median
    answer loss within 0.5 nats/token of ln(vocab_size), or, vocab unknown, above 5 nats/token
    with an interquartile range under 0.25); media flagged at ingest/profile (report.json
    ``media_flags``); model errors.
    """
    out: list[dict[str, str]] = []
    columns = columns or {}
    cons = _first(rj, "constraints", default=[]) or []
    unmet = [c for c in cons if isinstance(c, dict) and c.get("met") is False]
    if unmet:
        parts = []
        for c in unmet:
            name = str(c.get("name", "?")) + (f"[{c['group'] or '(none)'}]" if "group" in c else "")
            parts.append(f"{name}: required {c.get('kind', '')} {_fmt(c.get('required'))}, achieved "
                         f"{_fmt(c.get('achieved'))} (available {_fmt(c.get('available'))})")
        out.append({"title": f"{len(unmet)} constraint(s) unmet",
                    "text": "; ".join(parts) + ". `--strict` makes this a non-zero exit."})
    b, bl = rj.get("budget") or {}, rj.get("baseline") or {}
    n, N, mult = b.get("n"), b.get("N"), bl.get("mult")
    if all(isinstance(x, (int, float)) for x in (n, N, mult)) and n > 0:
        want = round(mult * n)
        if want > N:
            size = bl.get("size", N)
            out.append({"title": "Baseline capped to the pool",
                        "text": f"Uni-{mult:g}x asks for {mult:g} x {n:,} = {want:,} candidates but the pool holds "
                                f"{N:,}; the baseline has {_fmt(size)} ({100.0 * size / N:.0f}% of the pool), so its "
                                "distributions are the pool's and comparisons with it say little."})
    dins = _first(rj, "inputs.descriptors")
    acc = rj.get("accounting") or {}
    if "inputs" in rj and (not dins or (isinstance(dins, dict) and (dins.get("form") == "none"
                                                                       or not dins.get("matched")))):
        out.append({"title": "Selected without descriptors",
                    "text": "`gdo select` ran without --descriptors: every candidate counts as having no "
                            "descriptor row, so VDS, quality and frame diversity play no part in the score."})
    elif acc.get("without_descriptor_row"):
        out.append({"title": "Candidates without descriptors",
                    "text": f"{acc['without_descriptor_row']:,} candidates have no descriptor row (scored without "
                            "the descriptor terms)."})
    tj = columns.get("tnc_judge")
    if tj is not None and np.isfinite(tj).any():
        v = tj[np.isfinite(tj)]
        if np.all(np.abs(v - 0.5) < 1e-9):
            out.append({"title": "Judge answers all unclear",
                        "text": f"All {v.size:,} TNC judge answers are 'unclear' (0.5): the temporal category "
                                "carries no information from the model, and constraints counting temporal "
                                "videos are met or missed on that guess. Use a real model."})
    lv = columns.get("loss_video")
    if lv is not None and np.isfinite(lv).sum() >= 3:
        v = lv[np.isfinite(lv)]
        med = float(np.median(v))
        iqr = float(np.subtract(*np.percentile(v, [75, 25])))
        model_id = _first(meta or {}, "config.model")
        vocab = _vocab_size(run, model_id) if run is not None else None
        if vocab:
            bad = abs(med - math.log(vocab)) < 0.5
            why = f"median answer loss {med:.2f} nats/token vs ln(vocab_size) = ln({vocab:,}) = {math.log(vocab):.2f}"
        else:
            bad = med > 5.0 and iqr < 0.25
            why = f"median answer loss {med:.2f} nats/token with an interquartile range of {iqr:.3f}"
        if bad:
            out.append({"title": "The model looks untrained",
                        "text": f"{why}: the reference model predicts about uniformly, so VDS, PPL, SC and the "
                                "judge are noise (the demo's tiny random model does this)."})
    flags = rj.get("media_flags")
    if isinstance(flags, dict):
        hit = {k: v for k, v in flags.items() if isinstance(v, (int, float)) and v > 0}
        if hit:
            out.append({"title": "Flagged media",
                        "text": ", ".join(f"{k}: {_fmt(v)}" for k, v in hit.items())
                                + " (see the media flags section and rejects.jsonl)."})
    return out


def budget_formula(rj: dict[str, Any]) -> list[str]:
    """The subset size as the formula of docs/METHOD.md section 5 with this run's numbers."""
    b = rj.get("budget") or {}
    if not isinstance(b, dict) or "n" not in b:
        return []
    N, n = b.get("N"), b.get("n")
    p = _first(rj, "preset.params", default={}) or {}
    f = _fmt
    if b.get("mode") == "fixed":
        return [f"n = min(--budget, N) = min({f(b.get('requested'))}, {f(N)}) = {f(n)} (fixed budget; the auto "
                "rules were not applied)"]
    lines = [f"N = {f(N)} candidates in S = {f(b.get('strata'))} strata"]
    if "effective_strata" in b:
        lines.append(f"E = exp(-sum p_s ln p_s) = exp({b.get('entropy', 0):.4g}) = {b['effective_strata']:.4g};  "
                     f"n_eff = ceil(E x {f(b.get('effective_strata_mult'))}) = {f(b.get('n_eff'))}")
    cov = b.get("coverage") or {}
    if "n_tail" in b and cov:
        lines.append(f"n_tail = ceil(tail_target / p_tail) = ceil({f(cov.get('tail_target'))} / "
                     f"{cov.get('p_tail', float('nan')):.4g}) = {f(b['n_tail'])}  (p_tail: the last stratum "
                     f"needed to cover {f(cov.get('mass'))} of the pool)")
    if "n_lower" in b:
        lines.append(f"n = max(min_count, ceil(N x min_ratio), n_eff, n_tail) = max({f(b.get('n_min_count'))}, "
                     f"{f(b.get('n_min_ratio'))}, {f(b.get('n_eff'))}, {f(b.get('n_tail'))}) = {f(b['n_lower'])}")
        lines.append(f"n = min(n, max_count, floor(N x max_ratio), N) = min({f(b['n_lower'])}, "
                     f"{f(b.get('n_max_count'))}, floor({f(N)} x {f(p.get('max_ratio'))}) = {f(b.get('n_max_ratio'))}, "
                     f"{f(N)}) = {f(b.get('n_before_vds', n))}")
    v = b.get("vds") or {}
    if v.get("applied"):
        r = v.get("r")
        lines.append(f"VDS: r = {f(v.get('positives'))} / {f(v.get('total'))} = "
                     f"{r:.4g} (vds3' > {f(v.get('threshold'))}); n = min(max(n, ceil({f(v.get('target_positive'))} / r)"
                     f" = {f(v.get('need'))}), cap = {f(v.get('cap'))}) = {f(n)}"
                     + ("" if v.get("changed") else " (unchanged)") if isinstance(r, (int, float)) else
                     f"VDS adjustment: {f(v)}")
    elif v:
        lines.append(f"VDS adjustment not applied ({v.get('reason') or 'no VDS'})")
    lines.append(f"budget n = {f(n)}")
    return lines


def _measured_cost(cost_path: Path, timings_path: Path) -> dict[str, Any] | None:
    """Rows of the report's "Measured cost" section (issue 17): per profile stage of ``cost.json``
    (written by :func:`gdo.descriptors.profile.profile` next to descriptors.parquet) the descriptors
    it feeds, the engine, units, shards computed / reused, wall and task seconds, task seconds per
    unit; plus the select stage's total from ``timings.json``. None when neither file exists or
    reads. Seconds are measured, so this is the one section of report.html that differs between
    two otherwise identical runs (it sits between ``<!-- measured -->`` markers)."""
    rows: list[dict[str, Any]] = []
    try:
        prof = json.loads(cost_path.read_text(encoding="utf-8")).get("profile") or {}
    except (OSError, ValueError, AttributeError):
        prof = {}
    for stage, c in prof.items():
        if not isinstance(c, dict):
            continue
        rows.append({"stage": stage, "feeds": ", ".join(c.get("feeds") or []) or "-",
                     "engine": c.get("engine", "-"), "resource": c.get("resource", "-"),
                     "units": f"{_fmt(c.get('units'))} {c.get('unit', '')}".strip(),
                     "shards": f"{_fmt(c.get('shards_computed'))} computed / {_fmt(c.get('shards_reused'))} reused",
                     "wall_s": _fmt(c.get("wall_s")), "task_s": _fmt(c.get("task_s")),
                     "per_unit": _fmt(c.get("task_s_per_unit"))})
    total = None
    try:
        total = json.loads(timings_path.read_text(encoding="utf-8")).get("total")
    except (OSError, ValueError, AttributeError):
        pass
    if not rows and total is None:
        return None
    return {"rows": rows, "select_s": _fmt(total) if total is not None else None, "source": cost_path.name}


def build_report(run_dir: str | Path, *, out_path: str | Path | None = None,
                 candidates_path: str | Path | None = None, descriptors_path: str | Path | None = None,
                 n_examples: int = 5, thumbnails: bool = True, progress: bool = False) -> Path:
    """Write ``run_dir/report.html`` (or ``out_path``) from a run folder; return its path.

    Args:
        run_dir: folder holding report.json and selection.jsonl (and normally candidates.parquet,
            descriptors.parquet from the same run).
        out_path: where to write the HTML (default ``run_dir/report.html``).
        candidates_path / descriptors_path: override the default ``run_dir/*.parquet`` locations.
        n_examples: how many top and bottom candidates to show.
        thumbnails: decode media for frame thumbnails (False: text only, no media access).
        progress: a tqdm bar over the report's steps (plots, thumbnails, rendering).

    Raises:
        FileNotFoundError: report.json or selection.jsonl is missing.
        ValueError: a malformed report.json / selection.jsonl (file and line named).
    """
    run = Path(run_dir)
    rj_path = run / "report.json"
    sel_path = run / "selection.jsonl"
    for p in (rj_path, sel_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found: run `gdo select` (or `gdo run`) into {run} first")
    try:
        rj = json.loads(rj_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{rj_path}: not valid JSON ({e})") from e
    selection = _read_jsonl(sel_path)
    if descriptors_path is None and not (run / "descriptors.parquet").exists():
        # `gdo select --descriptors ELSEWHERE/descriptors.parquet --out run`: use the file report.json names
        rec = ((rj.get("inputs") or {}).get("descriptors") or {})
        if rec.get("form") == "parquet" and rec.get("path") and Path(rec["path"]).is_file():
            descriptors_path = Path(rec["path"])
            if candidates_path is None and not (run / "candidates.parquet").exists() \
                    and (descriptors_path.parent / "candidates.parquet").exists():
                candidates_path = descriptors_path.parent / "candidates.parquet"
    cand = _read_table(Path(candidates_path) if candidates_path else run / "candidates.parquet")
    desc = _read_table(Path(descriptors_path) if descriptors_path else run / "descriptors.parquet")
    scores_t = _read_table(run / "scores.parquet")

    sets: dict[str, dict[str, dict[str, Any]]] = {"gdo": {}, "baseline": {}}
    for i, s in enumerate(selection, 1):
        if "uid" not in s:
            raise ValueError(f"{sel_path}:{i}: missing field 'uid'")
        sets.setdefault(str(s.get("set", "gdo")), {})[s["uid"]] = s
    subset_uids, baseline_uids = sets["gdo"], sets["baseline"]

    # ---- pool table: candidates joined with descriptors by uid
    pool_uids: list[str] = []
    if cand is not None:
        pool_uids = cand.column("uid").to_pylist()
    elif desc is not None:
        pool_uids = desc.column("uid").to_pylist()
    pos = {u: i for i, u in enumerate(pool_uids)}
    n_pool = len(pool_uids)
    in_sub = np.array([u in subset_uids for u in pool_uids], dtype=bool)
    in_base = np.array([u in baseline_uids for u in pool_uids], dtype=bool)

    columns: dict[str, np.ndarray] = {}
    str_cols: dict[str, list[Any]] = {}
    if desc is not None and n_pool:
        d_uids = desc.column("uid").to_pylist()
        order = np.array([pos.get(u, -1) for u in d_uids])
        keep = order >= 0
        for name in desc.column_names:
            if name == "uid":
                continue
            col = desc.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                vals: list[Any] = [None] * n_pool
                for j, v in zip(order[keep], np.asarray(col.to_pylist(), dtype=object)[keep]):
                    vals[j] = v
                str_cols[name] = vals
            else:
                arr = np.full(n_pool, np.nan)
                arr[order[keep]] = _column_float(desc, name)[keep]
                columns[name] = arr
    if cand is not None:
        for name in ("bucket", "data_source", "media_kind"):
            if name in cand.column_names:
                str_cols.setdefault(name, cand.column(name).to_pylist())
        for name in ("n_frames", "duration_s"):
            if name in cand.column_names and name not in columns:
                columns[name] = _column_float(cand, name)

    from tqdm.auto import tqdm

    bar = tqdm(total=4 + 2 * n_examples, desc="report", unit="step", disable=not progress)
    ds = rj.get("descriptor_stats")
    scores_plot = score_plot(ds) if isinstance(ds, dict) else None
    bar.update(1)
    # ---- descriptor histograms
    descriptor_plot, missing = (None, [])
    if columns:
        descriptor_plot, missing = descriptor_histograms(columns, in_sub)
    bar.update(1)

    # ---- field distributions (pool / subset / baseline)
    fields: dict[str, dict[str, dict[str, int]]] = {}
    for f in FIELDS:
        vals = str_cols.get(f)
        if vals is None:
            continue
        entry: dict[str, dict[str, int]] = {"pool": {}, "subset": {}, "baseline": {}}
        for v, s, b in zip(vals, in_sub, in_base):
            key = "(missing)" if v is None else (str(v) if str(v) != "" else "(none)")
            entry["pool"][key] = entry["pool"].get(key, 0) + 1
            if s:
                entry["subset"][key] = entry["subset"].get(key, 0) + 1
            if b:
                entry["baseline"][key] = entry["baseline"].get(key, 0) + 1
        entry["pool"] = dict(sorted(entry["pool"].items(), key=lambda kv: (-kv[1], kv[0])))
        fields[f] = entry
    rj_fields = rj.get("fields")
    if isinstance(rj_fields, dict) and rj_fields:
        # the strata fields exactly as selection computed them (mode-aware); overrides ours
        fields = {}
        for f, e in rj_fields.items():
            if isinstance(e, dict) and isinstance(e.get("pool"), dict):
                pool_c = {("(none)" if k == "" else str(k)): int(v) for k, v in e["pool"].items()}
                fields[f] = {
                    "pool": dict(sorted(pool_c.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "subset": {("(none)" if k == "" else str(k)): int(v) for k, v in (e.get("subset") or {}).items()},
                    "baseline": {("(none)" if k == "" else str(k)): int(v) for k, v in (e.get("baseline") or {}).items()},
                }
    order = {_FIELD_ALIASES.get(f, f): i for i, f in enumerate(FIELD_ORDER)}
    fields = {f: {**e, "pool": {v: e["pool"][v] for v in natural_order(f, e["pool"])}}
              for f, e in sorted(fields.items(), key=lambda kv: (order.get(_FIELD_ALIASES.get(kv[0], kv[0]), 99), kv[0]))}
    field_plot = field_share_plot(fields) if fields else None
    bar.update(1)
    field_tables = []
    for f, e in fields.items():
        tots = {s: sum(e[s].values()) for s in e}
        rows = []
        for v, c in e["pool"].items():
            def cell(s: str, v: str = v) -> str:
                n = e[s].get(v, 0)
                return f"{n:,} ({100.0 * n / tots[s]:.1f}%)" if tots[s] else "0"
            rows.append((v, cell("pool"), cell("subset"), cell("baseline")))
        field_tables.append({"name": f, "rows": rows})

    jsd = _first(rj, "jsd", "js_divergence", "jensen_shannon")
    jsd_rows = []
    if isinstance(rj_fields, dict):
        for f, e in rj_fields.items():
            if isinstance(e, dict) and "jsd_subset" in e:
                jsd_rows.append((f, _fmt(e.get("jsd_subset")), _fmt(e.get("jsd_baseline"))))
    if isinstance(jsd, dict):
        for f, v in jsd.items():
            if isinstance(v, dict):
                jsd_rows.append((f, _fmt(_first(v, "subset", "gdo")), _fmt(v.get("baseline"))))
            else:
                jsd_rows.append((f, _fmt(v), "-"))

    # ---- budget, constraints, headline numbers
    budget = _first(rj, "budget", "budget_math", default={}) or {}
    budget_rows = [(k, _fmt(v)) for k, v in _flatten(budget)] if isinstance(budget, dict) else [("budget", _fmt(budget))]
    budget_lines = budget_formula(rj)
    cons = _first(rj, "constraints", "constraint_status", "feasibility", default=None)
    constraint_headers, constraints = _constraint_table(cons)
    met, total = _constraint_status(cons)

    n_pool_rj = _first(rj, "accounting.candidates_in_pool", "budget.N")
    n_sub = len(subset_uids)
    n_base = len(baseline_uids)
    target = _first(rj, "budget.n")
    preset = _first(rj, "preset", "goal", "preset.name", "config.preset", default="?")
    if isinstance(preset, dict):
        preset = preset.get("name", "custom")
    mode = _first(rj, "mode", "config.mode", default="default")
    n_pool_show = n_pool or n_pool_rj or 0
    cards = [
        {"label": "pool candidates", "value": _fmt(n_pool_show)},
        {"label": "GDO subset", "value": _fmt(n_sub)},
        {"label": "Uni-Nx baseline", "value": _fmt(n_base)},
        {"label": "constraints met", "value": f"{met}/{total}" if total else "-"},
    ]
    notes = [str(n) for n in (_first(rj, "notes", default=[]) or []) if n]
    warnings = [str(w) for w in (_first(rj, "warnings", default=[]) or []) if w]
    min_count = _first(rj, "budget.n_min_count", "preset.params.min_count")
    budget_mode = _first(rj, "budget.mode", default="auto")
    max_ratio = _first(rj, "preset.params.max_ratio")
    if budget_mode == "fixed":
        notes.append(f"Budget fixed by --budget: {_fmt(_first(rj, 'budget.requested'))} requested, "
                     f"{_fmt(target)} used (at most the pool size); the auto-budget rules were not applied.")
    if budget_mode != "fixed" and isinstance(min_count, (int, float)) and n_pool_show and min_count > n_pool_show:
        cap = _first(rj, "budget.n_max_ratio")
        if cap is None and isinstance(max_ratio, (int, float)):
            cap = math.floor(max_ratio * n_pool_show)
        notes.append(
            f"Budget capped by the pool: the preset asks for at least {int(min_count):,} candidates (min_count) "
            f"but the pool holds {int(n_pool_show):,}, and the auto budget is also capped at max_ratio x N = "
            f"{_fmt(max_ratio)} x {int(n_pool_show):,}, i.e. {_fmt(cap)}. The presets are sized for pools of "
            "millions of candidates; on a pool this small use --budget N to choose the subset size.")
    if isinstance(target, (int, float)) and target == 0 and n_pool_show:
        fixed = isinstance(rj.get("budget"), dict) and rj["budget"].get("mode") == "fixed"
        warnings.append("The budget was fixed at 0 (--budget 0), so the subset and the baseline are empty: "
                        "there is nothing to train on." if fixed else
                        "The budget is 0, so the subset is empty: the pool is too small for this preset's "
                        "max_ratio. Re-run with --budget N (for example a third of the pool).")
    elif isinstance(target, (int, float)) and n_sub < target:
        warnings.append(f"The subset holds {n_sub:,} candidates, fewer than the budget {int(target):,} "
                        "(not enough eligible candidates after deduplication, the per-video cap and the "
                        "video-share bounds; see the constraints). In default mode a short subset stays "
                        "short; --allow-random-fill fills it at random and reports how many.")
    meta_path = (Path(descriptors_path) if descriptors_path else run / "descriptors.parquet").with_name(
        "descriptors.meta.json")
    meta = _read_meta(meta_path)
    banner = run_warnings(rj, columns=columns, meta=meta, run=run)
    model_err = str_cols.get("model_error")
    if model_err is not None:
        n_err = sum(1 for e in model_err if e)
        if n_err:
            warnings.append(f"{n_err:,} candidates have a model error (their model descriptors are null).")
    model_id = _first(rj, "model", "descriptors.model", default=None)
    descriptor_note = ""
    if columns.get("vds") is not None and np.isfinite(columns["vds"]).any():
        descriptor_note = ("Model descriptors (vds, ppl, sc, tnc_judge, losses) are only as good as the "
                           "reference model: a tiny random model (the demo) makes them meaningless.")

    # ---- scores, strata and why-not of every candidate (scores.parquet; select writes it)
    score_of: dict[str, float] = {}
    reason_of: dict[str, str] = {}
    stratum_of: dict[str, str] = {}
    terms_of: dict[str, dict[str, float]] = {}
    score_src = "selection.jsonl (chosen candidates only)"
    if scores_t is not None and "uid" in scores_t.column_names and "score" in scores_t.column_names:
        su = scores_t.column("uid").to_pylist()
        score_of = {u: float(x) for u, x in zip(su, scores_t.column("score").to_pylist()) if x is not None}
        if "reason" in scores_t.column_names:
            reason_of = {u: r for u, r in zip(su, scores_t.column("reason").to_pylist()) if r is not None}
        if "stratum" in scores_t.column_names:
            stratum_of = {u: r for u, r in zip(su, scores_t.column("stratum").to_pylist()) if r is not None}
        term_names = [t for t in SCORE_TERMS if t in scores_t.column_names]
        tcols = {t: scores_t.column(t).to_pylist() for t in term_names}
        terms_of = {u: {t: tcols[t][i] for t in term_names} for i, u in enumerate(su)}
        score_src = "scores.parquet (every scored candidate)"
    else:
        for x in selection:
            if x.get("score") is not None and str(x.get("set", "gdo")) == "gdo":
                score_of[x["uid"]] = float(x["score"])
    ranked = sorted((u for u in score_of if u in pos), key=lambda u: (-score_of[u], pos[u]))
    k = min(n_examples, len(ranked) // 2 if len(ranked) >= 2 else len(ranked))
    top, bottom = ranked[:k], (ranked[-k:][::-1] if k else [])
    if not ranked and pool_uids:
        top = [u for u in pool_uids if u in subset_uids][:n_examples]
    groups = []
    cand_cols: dict[str, list[Any]] = {}
    if cand is not None:
        for c in ("bucket", "media_kind", "question", "answer", "media", "data_source"):
            if c in cand.column_names:
                cand_cols[c] = cand.column(c).to_pylist()
    thumbs: dict[tuple, str | None] = {}

    def thumb(i: int, n: int = 4, height: int = 96) -> str | None:
        media = (cand_cols.get("media") or [None] * n_pool)[i]
        kind = (cand_cols.get("media_kind") or [""] * n_pool)[i]
        if not thumbnails or not media:
            return None
        key = (kind, tuple(media), n, height)
        if key not in thumbs:
            thumbs[key] = thumbnail_strip(kind, media, n=n, height=height)
        return thumbs[key]

    def verdict(u: str) -> tuple[bool, str]:
        """(selected, "stage X" or the reason it was left out)."""
        if u in subset_uids:
            return True, f"selected by stage {subset_uids[u].get('stage') or '?'}"
        why = reason_of.get(u)
        if why:
            return False, f"not selected: {why}"
        return False, ("not selected (the reason is not recorded: this run's scores.parquet predates it)"
                       if scores_t is not None else "not selected (no scores.parquet in the run folder)")

    def example(u: str) -> dict[str, Any]:
        i = pos[u]
        sel, why = verdict(u)
        ex: dict[str, Any] = {"uid": u, "score": f"{score_of[u]:.3f}" if u in score_of else None,
                              "stage": (subset_uids.get(u) or {}).get("stage"), "in_subset": sel, "verdict": why,
                              "stratum": stratum_of.get(u, ""),
                              "bucket": "", "media_kind": "", "question": "", "answer": "", "thumb": None,
                              "thumb_note": "no visual input"}
        if cand_cols:
            ex.update({c: (cand_cols.get(c) or [""] * n_pool)[i] or "" for c in ("bucket", "media_kind", "question", "answer")})
            if len(ex["answer"]) > 600:
                ex["answer"] = ex["answer"][:600] + " ..."
            media = (cand_cols.get("media") or [None] * n_pool)[i]
            if thumbnails and media:
                ex["thumb"] = thumb(i)
                if ex["thumb"] is None:
                    ex["thumb_note"] = "media could not be read"
            elif not thumbnails:
                ex["thumb_note"] = "thumbnails disabled"
        parts = []
        for name in ("vds", "ppl", "sc", "tnc", "tnc_judge", "amm", "frame_diversity", "cluster_rep"):
            arr = columns.get(name)
            if arr is not None and np.isfinite(arr[i]):
                parts.append(f"{name} {arr[i]:.3g}")
        ex["desc"] = " · ".join(parts)
        bar.update(1)
        return ex

    if top:
        groups.append({"title": f"Top {len(top)} by score", "entries": [example(u) for u in top]})
    if bottom:
        groups.append({"title": f"Bottom {len(bottom)} by score", "entries": [example(u) for u in bottom]})
    examples_note = (f"Candidate scores (docs/METHOD.md section 5) from {score_src}. Each card says whether the "
                     "candidate is in the GDO subset (and the stage that picked it) or why it was left out: "
                     "stratum quota 0, not in the kept pool (ranked below its stratum's shortlist), duplicate "
                     "text, per-video cap, video share bound, or outscored (the budget filled first). "
                     "Thumbnails show up to four uniformly sampled frames (or the candidate's images).")

    # ---- the subset and baseline as one sortable, filterable table
    table_cols = [c for c in TABLE_DESCRIPTORS if c in columns and np.isfinite(columns[c]).any()]
    term_cols = [t for t in SCORE_TERMS if any(t in v for v in terms_of.values())]
    pick_rows = []
    n_thumbs = 0
    for set_name, chosen in (("subset", subset_uids), ("baseline", baseline_uids)):
        listed = sorted(chosen, key=lambda u: (-score_of.get(u, -math.inf), pos.get(u, 0)))[:MAX_TABLE_ROWS]
        for u in listed:
            i = pos.get(u)
            row: dict[str, Any] = {"set": set_name, "uid": u, "stage": (chosen[u] or {}).get("stage") or "",
                                   "score": score_of.get(u), "stratum": stratum_of.get(u, ""),
                                   "stratum_wrap": stratum_of.get(u, "").replace("|", "|\u200b"),
                                   "source": (cand_cols.get("data_source") or [""] * n_pool)[i] or "" if i is not None else "",
                                   "kind": (cand_cols.get("media_kind") or [""] * n_pool)[i] if i is not None else "",
                                   "terms": [(terms_of.get(u) or {}).get(t) for t in term_cols],
                                   "desc": [float(columns[c][i]) if i is not None and np.isfinite(columns[c][i]) else None
                                            for c in table_cols],
                                   "thumb": None}
            if i is not None and n_thumbs < MAX_TABLE_THUMBS:
                row["thumb"] = thumb(i, n=1, height=40)
                n_thumbs += row["thumb"] is not None
            pick_rows.append(row)
    table = {"term_cols": term_cols, "desc_cols": table_cols, "rows": pick_rows,
             "truncated": [(s_, len(c)) for s_, c in (("subset", subset_uids), ("baseline", baseline_uids))
                           if len(c) > MAX_TABLE_ROWS]}

    # ---- per stratum and per source group: quota, available, picked
    strata_rows = []
    st = rj.get("strata") or {}
    for r in (st.get("rows") or []) if isinstance(st, dict) else []:
        if isinstance(r, dict):
            strata_rows.append({"key": r.get("key", ""), "pool": r.get("pool"), "kept": r.get("kept"),
                                "quota": r.get("quota"), "subset": r.get("subset"), "baseline": r.get("baseline")})
    strata_note = ""
    if isinstance(st, dict) and st.get("count") and st.get("listed", 0) < st["count"]:
        strata_note = f"The {st['listed']:,} largest of {st['count']:,} strata (report.json lists no more)."
    floors = {str(c.get("group", "")): c for c in (cons or []) if isinstance(c, dict) and c.get("name") == "source_floor"}
    src_counts: dict[str, list[int]] = {}
    grp_of = {u: k.split("|")[-1] for u, k in stratum_of.items()}
    if not grp_of and "source_group" in str_cols:
        grp_of = {u: (str_cols["source_group"][i] or "") for i, u in enumerate(pool_uids)}
    for u in pool_uids:
        g_ = grp_of.get(u)
        if g_ is None:
            continue
        c_ = src_counts.setdefault(g_, [0, 0, 0])
        c_[0] += 1
        c_[1] += u in subset_uids
        c_[2] += u in baseline_uids
    source_rows = []
    for g_, (avail, picked, based) in sorted(src_counts.items(), key=lambda kv: (-kv[1][0], kv[0])):
        fl_ = floors.get(g_)
        source_rows.append({"group": g_ or "(none)", "pool": avail, "floor": fl_.get("required") if fl_ else None,
                            "met": fl_.get("met") if fl_ else None, "subset": picked, "baseline": based})

    files = [(name, what) for name, what in _FILES if (run / name).exists() or name == "report.html"]
    for p in sorted(run.glob("exports/*")) if (run / "exports").is_dir() else []:
        files.append((f"exports/{p.name}", "trainer export (see README, 'Exports')"))

    ctx = {
        "title": f"preset {preset} · mode {mode}" + (f" · model {model_id}" if isinstance(model_id, str) else ""),
        "cards": cards, "notes": notes, "warnings": warnings, "banner": banner, "budget_lines": budget_lines,
        "table": table, "strata_rows": strata_rows, "strata_note": strata_note, "source_rows": source_rows,
        "fmt": _fmt,
        "cost": _measured_cost(meta_path.with_name("cost.json"), run / "timings.json"),
        "budget_rows": budget_rows, "constraint_headers": constraint_headers, "constraints": constraints,
        "media_flags": _media_flag_rows(rj),  # issue 13 item 8 (lane media)
        "scores_plot": scores_plot, "descriptor_plot": descriptor_plot, "missing_descriptors": missing, "descriptor_note": descriptor_note,
        "field_plot": field_plot, "field_tables": field_tables, "jsd_rows": jsd_rows,
        "example_groups": groups, "examples_note": examples_note, "files": files, "version": __version__,
        "goal_section": _goal_section(rj, cand, thumbnails),  # issue 15 (gdo.report.goal_section)
    }
    bar.total = bar.n + 1
    html = render(ctx)
    out = Path(out_path) if out_path else run / "report.html"
    write_text_atomic(out, html)
    bar.update(1)
    bar.close()
    return out


def _goal_section(rj: dict[str, Any], cand: pa.Table | None, thumbnails: bool):
    from gdo.report.goal_section import render_goal_section

    goal = rj.get("goal")
    if not goal:
        return ""
    media = {}
    if cand is not None and thumbnails and {"uid", "media", "media_kind"} <= set(cand.column_names):
        want = {p["uid"] for it in goal.get("goal_items") or [] for p in it.get("nearest_picked") or []}
        for u, k, m in zip(cand["uid"].to_pylist(), cand["media_kind"].to_pylist(), cand["media"].to_pylist()):
            if u in want and m:
                media[u] = (k, m)
    return render_goal_section(goal, media_of=media.get, thumbnails=thumbnails, thumbnail_strip=thumbnail_strip,
                               png_uri=_png_uri)


def render(context: dict[str, Any]) -> str:
    """Render the report template with jinja2 (autoescaping on) and return the HTML text."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=False)
    return env.get_template("report.html.j2").render(**context)


def iter_img_sources(html: str) -> Iterable[str]:
    """Yield the ``src`` of every ``<img>`` in ``html`` (used by tests and `gdo report --check`)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class _P(HTMLParser):
        def handle_starttag(self, tag, attrs):  # noqa: D401 - HTMLParser hook
            if tag == "img":
                found.append(dict(attrs).get("src") or "")

    _P().feed(html)
    return iter(found)

"""report.html explains the run: the subset table, a verdict on every card, the warnings banner,
the budget formula, natural category order and readable plots. The demo run (examples/run_demo.py,
tiny offline model) is the subject; expected values come from selection.jsonl, scores.parquet,
report.json and candidates.parquet, never from the page itself."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gdo.report.html import budget_formula, natural_order, run_warnings

REPO = Path(__file__).resolve().parents[2]
REASONS = {"stratum quota 0", "not in the kept pool", "duplicate", "per-video cap", "video share bound", "outscored"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    spec = importlib.util.spec_from_file_location("run_demo", REPO / "examples" / "run_demo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("demo")
    assert mod.main(["--out", str(out)]) == 0
    return out


class _Page(HTMLParser):
    """Rows of table#picks (cell texts + data-set) and the cards' verdict/uid lines."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.cards: list[tuple[str, str]] = []
        self._in_picks = False
        self._row: list[str] | None = None
        self._set = ""
        self._cell: list[str] | None = None
        self._verdict: list[str] | None = None
        self._want_uid = False
        self._uid: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "picks":
            self._in_picks = True
        elif self._in_picks and tag == "tr" and "data-set" in a:
            self._row, self._set = [], a["data-set"]
        elif self._row is not None and tag == "td":
            self._cell = []
        elif tag == "div" and "verdict" in (a.get("class") or ""):
            self._verdict = []
        elif tag == "code" and self._want_uid:
            self._uid = []

    def handle_endtag(self, tag):
        if tag == "table" and self._in_picks:
            self._in_picks = False
        elif tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append((self._set, self._row))
            self._row = None
        elif tag == "div" and self._verdict is not None:
            self._want_uid, self._pending = True, "".join(self._verdict).strip()
            self._verdict = None
        elif tag == "code" and self._uid is not None:
            self.cards.append((self._pending, "".join(self._uid).strip()))
            self._uid, self._want_uid = None, False

    def handle_data(self, data):
        for buf in (self._cell, self._verdict, self._uid):
            if buf is not None:
                buf.append(data)


def _page(run: Path) -> _Page:
    p = _Page()
    p.feed((run / "report.html").read_text(encoding="utf-8"))
    return p


def test_every_subset_and_baseline_uid_in_the_table_with_its_stage(demo):
    sel = [json.loads(x) for x in (demo / "selection.jsonl").read_text().splitlines()]
    page = _page(demo)
    got = {(s, cells[1], cells[2]) for s, cells in page.rows}
    want = {("subset" if x["set"] == "gdo" else "baseline", x["uid"], x["stage"]) for x in sel}
    assert got == want
    assert sum(1 for s, _ in page.rows if s == "subset") == 12


def test_every_card_says_selected_or_why_not(demo):
    sel = {json.loads(x)["uid"]: json.loads(x) for x in (demo / "selection.jsonl").read_text().splitlines()
           if json.loads(x)["set"] == "gdo"}
    scores = pq.read_table(demo / "scores.parquet").to_pylist()
    reason = {r["uid"]: r["reason"] for r in scores}
    page = _page(demo)
    assert len(page.cards) == 10  # top 5 + bottom 5
    for verdict, uid in page.cards:
        if uid in sel:
            assert verdict == f"selected by stage {sel[uid]['stage']}"
        else:
            assert verdict == f"not selected: {reason[uid]}" and reason[uid] in REASONS


def test_reasons_agree_with_the_selection_outputs(demo):
    """Each recorded reason checked against independent evidence from the run's files."""
    rj = json.loads((demo / "report.json").read_text())
    quota = {r["key"]: r["quota"] for r in rj["strata"]["rows"]}
    cands = {r["uid"]: r for r in pq.read_table(demo / "candidates.parquet").to_pylist()}
    scores = pq.read_table(demo / "scores.parquet").to_pylist()
    picked = {json.loads(x)["uid"] for x in (demo / "selection.jsonl").read_text().splitlines()
              if json.loads(x)["set"] == "gdo"}
    texts = {(cands[u]["question"], cands[u]["answer"]) for u in picked}
    per_video: dict[str, int] = {}
    for u in picked:
        if cands[u]["video_key"]:
            per_video[cands[u]["video_key"]] = per_video.get(cands[u]["video_key"], 0) + 1
    seen = set()
    for r in scores:
        u, why = r["uid"], r["reason"]
        assert (why == "") == (u in picked)
        seen.add(why)
        if why == "stratum quota 0":
            assert quota[r["stratum"]] == 0
        elif why == "duplicate":
            assert (cands[u]["question"], cands[u]["answer"]) in texts
        elif why == "per-video cap":
            assert per_video[cands[u]["video_key"]] >= rj["preset"]["params"]["max_qa_per_video"]
        elif why in ("not in the kept pool", "outscored", "video share bound"):
            assert quota[r["stratum"]] > 0
    assert {"stratum quota 0", "duplicate"} <= seen


def test_demo_banner_names_what_weakens_it(demo):
    html = (demo / "report.html").read_text(encoding="utf-8")
    banner = html[html.index('id="warnings"'):html.index("<h2>Budget</h2>")]
    assert "Baseline capped to the pool" in banner and "10 x 12 = 120" in banner
    assert "Judge answers all unclear" in banner
    assert "The model looks untrained" in banner and "ln(512)" in banner
    assert "GDO_METHOD" not in html and "docs/METHOD.md" in html
    # the terminal summary of gdo run repeats the same warnings (titles in the same order)
    from gdo.report.summary import run_summary

    said = [line.split(": ", 2)[1] for line in run_summary(demo).splitlines() if line.startswith("  warning: ")]
    assert said[:3] == ["Baseline capped to the pool", "Judge answers all unclear", "The model looks untrained"]


# ---------------------------------------------------------------- units
def _rj(**kw):
    base = {"budget": {"mode": "fixed", "N": 34, "n": 12, "requested": 12, "strata": 16},
            "baseline": {"mult": 10.0, "size": 34, "target": 34},
            "constraints": [{"name": "budget", "kind": "min", "required": 12, "achieved": 12, "available": 22,
                             "met": True}],
            "inputs": {"descriptors": {"form": "parquet", "matched": 34}}, "accounting": {}}
    base.update(kw)
    return base


def test_warnings_each_condition():
    titles = lambda w: [x["title"] for x in w]  # noqa: E731
    assert titles(run_warnings(_rj())) == ["Baseline capped to the pool"]
    ok = _rj(baseline={"mult": 2.0, "size": 24, "target": 24})
    assert run_warnings(ok) == []
    unmet = _rj(baseline={"mult": 1.0, "size": 12, "target": 12},
                constraints=[{"name": "min_video", "kind": "min", "required": 6, "achieved": 4, "available": 4,
                              "met": False}])
    w = run_warnings(unmet)
    assert titles(w) == ["1 constraint(s) unmet"] and "min_video: required min 6, achieved 4" in w[0]["text"]
    nodesc = _rj(baseline={"mult": 1.0, "size": 12, "target": 12}, inputs={"descriptors": None})
    assert titles(run_warnings(nodesc)) == ["Selected without descriptors"]
    flags = _rj(baseline={"mult": 1.0, "size": 12, "target": 12}, media_flags={"rotated": 2, "partial": 0})
    w = run_warnings(flags)
    assert titles(w) == ["Flagged media"] and "rotated: 2" in w[0]["text"] and "partial" not in w[0]["text"]
    quiet = _rj(baseline={"mult": 1.0, "size": 12, "target": 12})
    judge = {"tnc_judge": np.array([0.5, 0.5, np.nan, 0.5])}
    assert titles(run_warnings(quiet, columns=judge)) == ["Judge answers all unclear"]
    assert run_warnings(quiet, columns={"tnc_judge": np.array([0.5, 1.0, 0.0])}) == []
    rng = np.random.default_rng(0)
    untrained = {"loss_video": 10.83 + 0.02 * rng.standard_normal(50)}  # ln(50,000) = 10.82
    assert titles(run_warnings(quiet, columns=untrained)) == ["The model looks untrained"]
    trained = {"loss_video": rng.gamma(2.0, 0.6, 50)}
    assert run_warnings(quiet, columns=trained) == []


def test_untrained_uses_the_vocab_when_known(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"text_config": {"vocab_size": 512}}))
    quiet = _rj(baseline={"mult": 1.0, "size": 12, "target": 12})
    meta = {"config": {"model": "m@abc"}}
    near = {"loss_video": np.full(10, math.log(512)) + np.linspace(-0.1, 0.1, 10)}
    w = run_warnings(quiet, columns=near, meta=meta, run=tmp_path)
    assert [x["title"] for x in w] == ["The model looks untrained"] and "ln(512) = 6.24" in w[0]["text"]
    far = {"loss_video": np.full(10, 2.0)}
    assert run_warnings(quiet, columns=far, meta=meta, run=tmp_path) == []


def test_budget_formula_auto_uses_the_reported_numbers():
    b = {"N": 34, "mode": "auto", "n": 0, "n_before_vds": 0, "n_eff": 249, "n_lower": 16000, "n_max_count": 110000,
         "n_max_ratio": 0, "n_min_count": 16000, "n_min_ratio": 1, "n_tail": 544, "strata": 16, "entropy": 2.4226,
         "effective_strata": 11.2757, "effective_strata_mult": 22.0,
         "coverage": {"mass": 0.95, "p_tail": 1 / 34, "tail_target": 16.0}}
    lines = budget_formula({"budget": b, "preset": {"params": {"max_ratio": 0.018}}})
    text = "\n".join(lines)
    assert "n_eff = ceil(E x 22) = 249" in text
    assert "max(16,000, 1, 249, 544) = 16,000" in text
    assert "floor(34 x 0.018) = 0" in text and lines[-1] == "budget n = 0"
    # the formula's arithmetic holds with these numbers
    assert math.ceil(11.2757 * 22) == 249 and math.ceil(16.0 / (1 / 34)) == 544 and math.floor(34 * 0.018) == 0
    fixed = budget_formula({"budget": {"mode": "fixed", "N": 34, "n": 12, "requested": 50}})
    assert fixed == ["n = min(--budget, N) = min(50, 34) = 12 (fixed budget; the auto rules were not applied)"]


def test_natural_order():
    assert natural_order("a_len", {"a<=8": 1, "a<=2": 5, "a<=24": 1, ">64": 1, "a<=64": 2}) == \
        ["a<=2", "a<=8", "a<=24", "a<=64", ">64"]
    assert natural_order("duration", {"long": 1, "image": 9, "very_long": 2, "short": 3}) == \
        ["image", "short", "long", "very_long"]
    assert natural_order("temporal", {"Static": 9, "Temporal": 1, "Mixed": 2}) == ["Temporal", "Mixed", "Static"]
    assert natural_order("source_group", {"(none)": 30, "b": 2, "a": 2, "c": 5}) == ["c", "a", "b", "(none)"]


def test_plots_are_readable_at_1x(demo):
    """Plot PNGs are at most the page width (shown at 1x) and drawn with fonts of at least 10 pt at
    100 dpi (about 14 px); no figure draws a legend inside an axes."""
    import base64
    import io

    from PIL import Image

    from gdo.report.html import FONT_PT, SMALL_PT, _DPI, _plt

    html = (demo / "report.html").read_text(encoding="utf-8")
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(pngs) == 3
    for b in pngs:
        im = Image.open(io.BytesIO(base64.b64decode(b)))
        assert im.width <= 1300  # the page's content width: never scaled down
    plt = _plt()
    assert min(FONT_PT, SMALL_PT) * _DPI / 72 >= 10 * 1.3
    assert plt.rcParams["xtick.labelsize"] >= 10 and plt.rcParams["legend.fontsize"] >= 10

#!/usr/bin/env python
"""Release-equivalence fixtures: a small pool in the release's layout, and the release's subsets on it.

Two jobs (issue 12, "Recorded fixtures"):

* :func:`generate` writes a deterministic pool of a few thousand candidates in the two JSONL
  layouts the authors' ``build_pair.py`` reads (``llava_onevision.jsonl``: image rows,
  ``llava_video.jsonl``: frame-list video rows) plus a merged metrics file
  (``sixd_metrics_merged.jsonl``: ``qa_uid``, ``loss_video``, ``loss_blind``, ``frame_diversity``,
  ``vds``, ``quality_score``). It holds what makes gdo and the release disagree when they differ:
  several raw ``data_source`` values per source group, questions starting ``A.``/``A)`` and
  option lines, whitespace-variant duplicate answers, empty-question first turns (``<image>``
  alone), multi-image rows, non-ASCII text, one-frame videos, >8 QA per video, exact score ties
  (images without a metrics row), metrics rows with missing values and one metrics row that
  matches no candidate. Only ``random.Random(seed).random()`` drives it (stable across Python
  versions), so the test regenerates the same files instead of storing them.
* ``--release DIR`` runs the release's ``gdo/build_pair.py`` (DIR = a checkout of github
  rujiewu/GDO; nothing of it is copied here) for every preset at ``auto`` and at a fixed budget,
  plus ablation runs, and records the chosen ``qa_uid`` lists (GDO subset and Uni-10x baseline,
  in the release's output order) and the budget in ``--record`` (JSON). The presets' parameters
  are read from the release's own ``configs/<preset>.env``.

* ``--merge-record NPZ`` (with ``--release``): the raw-shard path. ``benchmarks/make_pool.py``
  writes a pool of ``MERGE_N`` candidates with the release's per-rank raw shards (``text_feat``,
  ``vis_feat`` and the scalar metrics); the release's ``gdo/merge_metrics.py`` merges them
  (its clustering at k = min(4096, N) and its quality), and ``build_pair.py`` selects from the
  merged file. Recorded: per shard row the release's ``cluster_score`` and ``quality_score``, and the
  uids of the temp_plus subset at auto and at a fixed budget, and of its baseline.

CLI::

    python benchmarks/release_fixture.py --out /tmp/fx --release /path/to/GDO \
        --record tests/data/release/expected.json --merge-record tests/data/release/merged_6000.npz
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGE_FILE = "llava_onevision.jsonl"
VIDEO_FILE = "llava_video.jsonl"
METRICS_FILE = "sixd_metrics_merged.jsonl"
PRESETS = ("minloss", "diverse", "temp", "temp_plus")
FIXED_BUDGET = 250
MERGE_N = 6000  # > 4096: the release's streaming k-means makes one partial_fit after its init
MERGE_SEED = 3
N_IMAGE_ROWS = 1500
N_VIDEOS = 330
SEED = 20260

IMAGE_SOURCES = ("ai2d(cauldron,llava_format)", "ai2d(gpt4v)", "ai2d(internvl)", "sharegpt4v(coco)",
                 "sharegpt4v(sam)", "geo170k(qa)", "geo170k(align)", "ureader_qa", "ureader_kg",
                 "chart2text(cauldron)", "llava_wilder_zh", "mathqa")
VIDEO_SOURCES = ("0_30_s_academic_v0_1_oe", "0_30_s_academic_v0_1_mc", "0_30_s_academic_v0_1_cap",
                 "0_30_s_youtube_v0_1_mc", "0_30_s_youtube_v0_1_oe", "30_60_s_academic_v0_1_cap",
                 "llava_hound(0_30_s)", "llava_hound(30_60_s)", "1_2_m_nextqa_mc")
WORDS = ("the man woman dog cat car red blue green table chair tree road sign number water room door light "
         "hand shirt two three four left right top bottom small large people street field sky chart graph "
         "value total area angle line shape circle color yellow kitchen plate cup bottle box city house").split()
UNICODE_WORDS = ("café", "naïve", "Straße", "日本語", "東京", "Ελλάδα", "москва", "İstanbul", "façade", "über")
TEMPORAL = ("before", "after", "then", "while", "during", "first", "next", "finally", "later", "earlier")


class _R:
    def __init__(self, seed: int) -> None:
        import random

        self.r = random.Random(seed)

    def u(self) -> float:
        return self.r.random()

    def int(self, lo: int, hi: int) -> int:  # inclusive
        return lo + min(hi - lo, int(self.u() * (hi - lo + 1)))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def words(self, k: int, uni: float = 0.0) -> str:
        return " ".join(self.pick(UNICODE_WORDS) if self.u() < uni else self.pick(WORDS) for _ in range(k))


def _question(r: _R, video: bool) -> str:
    x = r.u()
    k = r.pick((2, 4, 7, 12, 20, 40, 70))
    body = r.words(k, uni=0.08)
    if x < 0.10:
        return f"A. {r.words(2)}\nB. {r.words(2)}\nWhich option fits the {r.pick(WORDS)}?"
    if x < 0.17:
        return f"What is the {r.pick(WORDS)}?\nA) {r.words(1)}\nB) {r.words(1)}\nC) {r.words(1)}"
    if x < 0.24:
        return f"{body}?\nA. {r.words(1)}\nB. {r.words(1)}\nAnswer with the option's letter from the given choices directly."
    if x < 0.28:
        return f"Pick the right choice: {body}"
    if video and x < 0.55:
        return f"What happens {r.pick(TEMPORAL)} the {body}?"
    if x < 0.62:
        return f"  Describe   the {body}  in\tdetail. "  # whitespace-heavy
    return f"What is the {body}?"


def _answer(r: _R) -> str:
    x = r.u()
    if x < 0.25:
        return r.pick(("A", "B", "C", "Yes", "No", "2"))
    k = r.pick((1, 3, 6, 12, 20, 40, 80))
    if x < 0.30:
        w = r.pick(WORDS)
        return " ".join([w] * k)  # repetitive answer (distinct-token penalty)
    return r.words(k, uni=0.1).capitalize() + "."


def _metrics(r: _R, uid: str, video: bool) -> dict | None:
    x = r.u()
    if x < (0.12 if video else 0.35):
        return None  # no metrics row
    lv = round(0.2 + 3.0 * r.u(), 6)
    lb = round(lv + (1.5 * r.u() - 0.4), 6)
    row = {"qa_uid": uid, "loss_video": lv, "loss_blind": lb, "frame_diversity": round(0.3 * r.u(), 6) if video else 0.0,
           "vds": round(lb - lv, 6), "quality_score": round(r.u(), 6)}
    if x > 0.96:
        row["loss_blind"] = None  # partial rows: the release falls back to z(vds)
    elif x > 0.93:
        row["frame_diversity"] = None
    elif x > 0.91:
        row["quality_score"] = None
    return row


def _turns(r: _R, video: bool) -> list[tuple[str, str]]:
    n = 1 if r.u() < 0.6 else r.int(2, 4)
    return [(_question(r, video), _answer(r)) for _ in range(n)]


def generate(out: str | os.PathLike, seed: int = SEED, n_image_rows: int = N_IMAGE_ROWS,
             n_videos: int = N_VIDEOS) -> dict:
    """Write ``IMAGE_FILE``, ``VIDEO_FILE`` and ``METRICS_FILE`` under ``out``; return counts.

    Candidates are counted as the release counts them (an empty question after stripping media
    tokens is no candidate and does not advance the turn number).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = _R(seed)
    metrics: list[dict] = []
    img_lines, vid_lines = [], []
    n_cand = {"image": 0, "video": 0}
    common = [(_question(r, False), _answer(r)) for _ in range(12)]
    for i in range(n_image_rows):
        rid = f"img{i:05d}"
        n_img = 1 if r.u() < 0.85 else r.int(2, 3)
        images = [f"ov/{rid}_{k}.jpg" for k in range(n_img)]
        turns = _turns(r, False)
        if r.u() < 0.04:
            q, a = r.pick(common)  # duplicate text, whitespace variants of the answer
            turns[0] = (q, a if r.u() < 0.5 else " " + a.replace(" ", "  ", 1) + "  ")
        msgs = []
        empty_first = r.u() < 0.05
        if empty_first:
            msgs += [{"role": "user", "content": "<image>" * n_img}, {"role": "assistant", "content": r.words(3) + "."}]
        for k, (q, a) in enumerate(turns):
            tok = "<image>" * n_img + "\n" if (k == 0 and not empty_first) else ""
            msgs += [{"role": "user", "content": tok + q}, {"role": "assistant", "content": a}]
        src = r.pick(IMAGE_SOURCES)
        img_lines.append({"id": rid, "images": images, "messages": msgs, "data_source": src})
        for t in range(len(turns)):
            uid = f"ov::{rid}::t{t}"
            n_cand["image"] += 1
            m = _metrics(r, uid, False)
            if m:
                metrics.append(m)
    for v in range(n_videos):
        vid = f"v{v:04d}"
        nf = r.pick((1, 6, 16, 32, 32, 45, 90, 180))
        frames = [f"vv/{vid}/{k:03d}.jpg" for k in range(nf)]
        src = r.pick(VIDEO_SOURCES)
        n_rows = 1 if r.u() < 0.6 else r.int(2, 4)  # up to ~16 QA per video: the cap of 8 matters
        for j in range(n_rows):
            rid = f"{vid}_r{j}"
            turns = _turns(r, True)
            msgs = []
            empty_first = r.u() < 0.05
            if empty_first:
                msgs += [{"role": "user", "content": "<video>"}, {"role": "assistant", "content": r.words(4) + "."}]
            for k, (q, a) in enumerate(turns):
                tok = "<video>\n" if (k == 0 and not empty_first) else ""
                msgs += [{"role": "user", "content": tok + q}, {"role": "assistant", "content": a}]
            vid_lines.append({"id": rid, "video_id": vid, "images": frames, "messages": msgs, "data_source": src})
            for t in range(len(turns)):
                uid = f"vv::{rid}::t{t}"
                n_cand["video"] += 1
                m = _metrics(r, uid, True)
                if m:
                    metrics.append(m)
    metrics.append({"qa_uid": "vv::not_in_pool::t0", "loss_video": 1.0, "loss_blind": 1.5, "frame_diversity": 0.1,
                    "vds": 0.5, "quality_score": 0.5})
    # shard-like order (the release merges rank shards): interleave
    metrics = metrics[0::3] + metrics[1::3] + metrics[2::3]
    for name, lines in ((IMAGE_FILE, img_lines), (VIDEO_FILE, vid_lines), (METRICS_FILE, metrics)):
        with open(out / name, "w", encoding="utf-8") as f:
            for obj in lines:
                f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return {"candidates": n_cand, "metrics_rows": len(metrics)}


def _env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


#: Release config keys (configs/*.env) -> gdo Goal fields.
ENV_TO_GOAL = {
    "AUTO_MIN_COUNT": "min_count", "AUTO_MAX_COUNT": "max_count", "AUTO_MIN_RATIO": "min_ratio",
    "AUTO_MAX_RATIO": "max_ratio", "AUTO_EFFECTIVE_STRATA_MULT": "effective_strata_mult",
    "AUTO_COVERAGE_MASS": "coverage_mass", "AUTO_TAIL_TARGET": "tail_target",
    "AUTO_VDS3_TARGET_POSITIVE": "vds3_target_positive", "AUTO_VDS3_THRESHOLD": "vds3_threshold",
    "AUTO_VDS3_MAX_MULT": "vds3_max_mult", "MIN_VIDEO_RATIO": "min_video_ratio",
    "MAX_VIDEO_RATIO": "max_video_ratio", "MIN_TEMPORAL_IN_VIDEO_RATIO": "min_temporal_in_video_ratio",
    "TEMPORAL_CATEGORIES": "temporal_categories", "OVERSAMPLE_FACTOR": "oversample",
    "VIDEO_OVERSAMPLE_FACTOR": "video_oversample", "TEMPORAL_OVERSAMPLE_FACTOR": "temporal_oversample",
    "SOURCE_GROUP_FLOOR_TOPK": "source_floor_topk", "MIN_SOURCE_GROUP_RATIO": "min_source_group_ratio",
    "SOURCE_GROUP_FLOOR_FRAC_OF_EXPECTED": "source_floor_frac_of_expected",
}


def cases() -> list[dict]:
    """Every preset at auto and at a fixed budget; the ablations; and goals that reach the
    arithmetic the presets cannot on a small pool (the VDS budget adjustment acting, a pool with
    floor(N * max_ratio) = 0, max video below min video, scaled source floors). ``overrides`` are
    release config keys replacing the preset's values; ``mult`` (default 10) the Uni-Nx multiplier,
    lowered where 10 n would exceed the pool (the release then repeats candidates in its baseline,
    which gdo does not do)."""
    out = []
    for p in PRESETS:
        out.append({"name": f"{p}_auto", "preset": p, "budget": "auto", "flags": [], "overrides": {}})
        out.append({"name": f"{p}_fixed", "preset": p, "budget": str(FIXED_BUDGET), "flags": [], "overrides": {}})
    out += [
        {"name": "temp_plus_auto_no_vds", "preset": "temp_plus", "budget": "auto", "flags": ["--disable-score-vds"],
         "overrides": {"AUTO_MIN_COUNT": "30", "AUTO_MAX_COUNT": "5000", "AUTO_MAX_RATIO": "0.3",
                       "AUTO_EFFECTIVE_STRATA_MULT": "1.0", "AUTO_TAIL_TARGET": "1.0", "AUTO_COVERAGE_MASS": "0.5",
                       "AUTO_VDS3_TARGET_POSITIVE": "400"}, "mult": 2.0},
        {"name": "temp_plus_auto_no_vds_budget", "preset": "temp_plus", "budget": "auto",
         "flags": ["--disable-vds3-budget"],
         "overrides": {"AUTO_MIN_COUNT": "30", "AUTO_MAX_COUNT": "5000", "AUTO_MAX_RATIO": "0.3",
                       "AUTO_EFFECTIVE_STRATA_MULT": "1.0", "AUTO_TAIL_TARGET": "1.0", "AUTO_COVERAGE_MASS": "0.5",
                       "AUTO_VDS3_TARGET_POSITIVE": "400"}, "mult": 2.0},
        {"name": "diverse_auto_no_ppl_no_sc", "preset": "diverse", "budget": "auto",
         "flags": ["--disable-score-ppl", "--disable-score-sc"], "overrides": {}},
        {"name": "vds_budget_acts", "preset": "temp_plus", "budget": "auto", "flags": [],
         "overrides": {"AUTO_MIN_COUNT": "30", "AUTO_MAX_COUNT": "5000", "AUTO_MAX_RATIO": "0.3",
                       "AUTO_EFFECTIVE_STRATA_MULT": "1.0", "AUTO_TAIL_TARGET": "1.0", "AUTO_COVERAGE_MASS": "0.5",
                       "AUTO_VDS3_TARGET_POSITIVE": "400"}, "mult": 2.0},
        {"name": "max_ratio_floor_zero", "preset": "temp", "budget": "auto", "flags": [],
         "overrides": {"AUTO_MIN_COUNT": "100", "AUTO_MAX_COUNT": "300", "AUTO_MIN_RATIO": "0.0001",
                       "AUTO_MAX_RATIO": "0.0002"}},
        {"name": "video_bounds_and_scaled_floors", "preset": "minloss", "budget": "101", "flags": [],
         "overrides": {"MIN_VIDEO_RATIO": "0.33", "MAX_VIDEO_RATIO": "0.33", "SOURCE_GROUP_FLOOR_TOPK": "40",
                       "MIN_SOURCE_GROUP_RATIO": "0.05", "SOURCE_GROUP_FLOOR_FRAC_OF_EXPECTED": "0.9"}},
    ]
    return out


def release_env(release: Path, preset: str, overrides: dict | None = None) -> dict[str, str]:
    """The release's config values for ``preset`` (configs/<preset>.env) with ``overrides`` applied."""
    env = {k: v for k, v in _env(release / "configs" / f"{preset}.env").items() if k != "PROFILE_NAME"}
    env.update(overrides or {})
    return env


def run_release(release: Path, fixture: Path, case: dict, python: str = sys.executable) -> dict:
    """Run the release's build_pair.py once for ``case`` (see :func:`cases`); return the case with
    the release's config values (``env``), ``n``, ``total_pairs`` and the ``gdo`` / ``baseline`` uids."""
    budget, extra = case["budget"], case["flags"]
    env = release_env(release, case["preset"], case["overrides"])
    flag = {k: "--" + k.lower().replace("_", "-") for k in env}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        cmd = [python, str(release / "gdo" / "build_pair.py"), "--onevision", str(fixture / IMAGE_FILE),
               "--video", str(fixture / VIDEO_FILE), "--seed", "42", "--target-frames", "32",
               "--max-qa-per-video", "8", "--random-target-multiplier", str(case.get("mult", 10.0)),
               "--metrics-jsonl", str(fixture / METRICS_FILE), "--no-tqdm",
               "--output-random", str(td / "uni.jsonl"), "--output-filtered", str(td / "gdo.jsonl"),
               "--report", str(td / "report.json")]
        for k, v in env.items():
            cmd += [flag[k], v]
        if budget != "auto":
            cmd += ["--target-count", budget]
        cmd += extra
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
        rep = json.loads((td / "report.json").read_text())

        def uids(p):
            return [json.loads(line)["qa_uid"] for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]

        return {**case, "env": env, "n": rep["meta"]["target_count"],
                "total_pairs": rep["meta"]["total_pairs"], "gdo": uids(td / "gdo.jsonl"),
                "baseline": uids(td / "uni.jsonl")}


def _load_make_pool():
    import importlib.util

    if "make_pool" in sys.modules:  # one module object: its functions are pickled by name
        return sys.modules["make_pool"]
    spec = importlib.util.spec_from_file_location("make_pool", Path(__file__).resolve().parent / "make_pool.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_pool"] = mod
    spec.loader.exec_module(mod)
    return mod


def generate_merge_pool(out: str | os.PathLike) -> Path:
    """The raw-shard pool of ``--merge-record`` (make_pool, ``MERGE_N`` candidates, raw form)."""
    mp = _load_make_pool()
    mp.generate(MERGE_N, out, seed=MERGE_SEED, forms=("raw",), workers=1)
    return Path(out)


def record_merge(release: Path, out: Path, record: Path, python: str = sys.executable) -> dict:
    """Run the release's merge_metrics.py and build_pair.py on the raw-shard pool; write ``record``."""
    import numpy as np

    mp = _load_make_pool()
    pool = generate_merge_pool(out)
    merged = pool / "release_merged.jsonl"
    subprocess.run([python, str(release / "gdo" / "merge_metrics.py"), "--input-dir", str(pool / mp.SHARD_DIR),
                    "--output-jsonl", str(merged), "--output-report", str(pool / "merge_report.json"),
                    "--seed", "42", "--no-tqdm"], check=True, stdout=subprocess.DEVNULL)
    uids, rep, qual = [], [], []
    with open(merged, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            uids.append(o["qa_uid"])
            rep.append(o["cluster_score"])
            qual.append(o["quality_score"])
    fx = Path(tempfile.mkdtemp(prefix="gdo_merge_fx_"))
    for src, dst in ((mp.IMAGE_FILE, IMAGE_FILE), (mp.VIDEO_FILE, VIDEO_FILE)):
        (fx / dst).symlink_to((pool / src).resolve())
    (fx / METRICS_FILE).symlink_to(merged.resolve())
    runs = {}
    for budget in ("auto", str(FIXED_BUDGET)):
        case = {"name": f"temp_plus_{budget}", "preset": "temp_plus", "budget": budget, "flags": [], "overrides": {}}
        runs[budget] = run_release(release, fx, case, python=python)
    np.savez_compressed(
        record, uid=np.asarray(uids), cluster_score=np.asarray(rep, np.float64),
        quality_score=np.asarray(qual, np.float64),
        auto_n=runs["auto"]["n"], auto_gdo=np.asarray(runs["auto"]["gdo"]), auto_baseline=np.asarray(runs["auto"]["baseline"]),
        fixed_n=runs[str(FIXED_BUDGET)]["n"], fixed_gdo=np.asarray(runs[str(FIXED_BUDGET)]["gdo"]),
        fixed_baseline=np.asarray(runs[str(FIXED_BUDGET)]["baseline"]))
    return {"rows": len(uids), "auto_n": runs["auto"]["n"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the generated pool")
    ap.add_argument("--release", help="checkout of github rujiewu/GDO (runs its build_pair.py)")
    ap.add_argument("--record", help="JSON file for the release's outputs")
    ap.add_argument("--merge-record", help="NPZ file for the raw-shard (merge_metrics) recording")
    a = ap.parse_args(argv)
    if a.release and a.merge_record:
        print(json.dumps(record_merge(Path(a.release), Path(a.out) / "merge_pool", Path(a.merge_record))))
    info = generate(a.out)
    print(json.dumps(info))
    if a.release:
        rec = {"generator": {"seed": SEED, "n_image_rows": N_IMAGE_ROWS, "n_videos": N_VIDEOS, **info},
               "release": "github.com/rujiewu/GDO gdo/build_pair.py", "cases": {}}
        for case in cases():
            name = case["name"]
            rec["cases"][name] = c = run_release(Path(a.release), Path(a.out), case)
            print(f"{name}: n={c['n']} gdo={len(c['gdo'])} baseline={len(c['baseline'])}")
        if a.record:
            Path(a.record).parent.mkdir(parents=True, exist_ok=True)
            Path(a.record).write_text(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

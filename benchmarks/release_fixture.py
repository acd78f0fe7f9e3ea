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

CLI::

    python benchmarks/release_fixture.py --out /tmp/fx --release /path/to/GDO \
        --record tests/data/release/expected.json
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


#: (name, preset, budget, extra release flags): every preset at auto and fixed, and the ablations.
def cases() -> list[tuple[str, str, str, list[str]]]:
    out = []
    for p in PRESETS:
        out.append((f"{p}_auto", p, "auto", []))
        out.append((f"{p}_fixed", p, str(FIXED_BUDGET), []))
    out.append(("temp_plus_auto_no_vds", "temp_plus", "auto", ["--disable-score-vds"]))
    out.append(("temp_plus_auto_no_vds_budget", "temp_plus", "auto", ["--disable-vds3-budget"]))
    out.append(("diverse_auto_no_ppl_no_sc", "diverse", "auto", ["--disable-score-ppl", "--disable-score-sc"]))
    return out


def run_release(release: Path, fixture: Path, name: str, preset: str, budget: str, extra: list[str],
                python: str = sys.executable) -> dict:
    """Run the release's build_pair.py once; return {"n", "gdo": [uids], "baseline": [uids]}."""
    env = _env(release / "configs" / f"{preset}.env")
    flag = {k: "--" + k.lower().replace("_", "-") for k in env if k != "PROFILE_NAME"}
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        cmd = [python, str(release / "gdo" / "build_pair.py"), "--onevision", str(fixture / IMAGE_FILE),
               "--video", str(fixture / VIDEO_FILE), "--seed", "42", "--target-frames", "32",
               "--max-qa-per-video", "8", "--random-target-multiplier", "10.0",
               "--metrics-jsonl", str(fixture / METRICS_FILE), "--no-tqdm",
               "--output-random", str(td / "uni.jsonl"), "--output-filtered", str(td / "gdo.jsonl"),
               "--report", str(td / "report.json")]
        for k, v in env.items():
            if k != "PROFILE_NAME":
                cmd += [flag[k], v]
        if budget != "auto":
            cmd += ["--target-count", budget]
        cmd += extra
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
        rep = json.loads((td / "report.json").read_text())

        def uids(p):
            return [json.loads(line)["qa_uid"] for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]

        return {"preset": preset, "budget": budget, "flags": extra, "n": rep["meta"]["target_count"],
                "total_pairs": rep["meta"]["total_pairs"], "gdo": uids(td / "gdo.jsonl"),
                "baseline": uids(td / "uni.jsonl")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the generated pool")
    ap.add_argument("--release", help="checkout of github rujiewu/GDO (runs its build_pair.py)")
    ap.add_argument("--record", help="JSON file for the release's outputs")
    a = ap.parse_args(argv)
    info = generate(a.out)
    print(json.dumps(info))
    if a.release:
        rec = {"generator": {"seed": SEED, "n_image_rows": N_IMAGE_ROWS, "n_videos": N_VIDEOS, **info},
               "release": "github.com/rujiewu/GDO gdo/build_pair.py", "cases": {}}
        for name, preset, budget, extra in cases():
            rec["cases"][name] = run_release(Path(a.release), Path(a.out), name, preset, budget, extra)
            c = rec["cases"][name]
            print(f"{name}: n={c['n']} gdo={len(c['gdo'])} baseline={len(c['baseline'])}")
        if a.record:
            Path(a.record).parent.mkdir(parents=True, exist_ok=True)
            Path(a.record).write_text(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()

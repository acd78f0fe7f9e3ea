"""In-memory synthetic pools shaped like LLaVA-OneVision + LLaVA-Video (test and benchmark helper).

Not part of the package (issue 11 item 6): tests import it directly (tests/ is on pytest's
pythonpath), benchmarks/bench_select_memory.py puts tests/ on sys.path.

:func:`make_candidates` builds a CANDIDATE_SCHEMA table (media paths omitted: selection never opens
media; ``native_frames`` carries the frame count), :func:`make_descriptors` a matching descriptor
table with our column names (or the release's with ``release_names=True``). Everything is seeded.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gdo.schema import CANDIDATE_SCHEMA

_SOURCES = [f"src{i:02d}_part_a_b_c" for i in range(24)] + [f"vid{i}(sub{i})" for i in range(6)]
_Q_IMG = ["What is shown in the image?", "Describe the scene in detail.", "How many people are there?",
          "What color is the car on the left side of the street?", "Is there a dog?",
          "Which object is closest to the camera and why does it matter here?", "Read the text on the sign."]
_Q_VID = ["What happens after the man opens the door?", "What does the woman do first?",
          "Describe the video.", "What is the person holding?", "What happens before the car stops?",
          "Where does the scene take place?", "What sequence of actions does the chef follow?"]
_A = ["Yes.", "A red car parked near the curb.", "Two people are walking a dog in the park on a sunny day.",
      "The man opens the door, then walks into the room and sits down at the table near the window.",
      "B", "blue blue blue blue blue blue", "It is a kitchen.", "He picks up the cup and drinks slowly."]


def make_candidates(n: int, seed: int = 0, video_share: float = 0.4, mcq_share: float = 0.15) -> pa.Table:
    """N synthetic candidates (CANDIDATE_SCHEMA), about ``video_share`` video QA (1-8 QA per video,
    32-180 native frames), ~30 data sources with Zipf-like frequencies, some MCQ options, some
    temporal wording; texts vary per candidate (a numeric suffix) except a few exact duplicates."""
    rng = np.random.default_rng(seed)
    isv = rng.random(n) < video_share
    nv = int(isv.sum())
    # videos: 1-8 QA each
    per = rng.integers(1, 9, size=max(1, nv))
    vid_of = np.repeat(np.arange(per.size), per)[:nv]
    if vid_of.size < nv:
        vid_of = np.r_[vid_of, np.arange(per.size, per.size + nv - vid_of.size)]
    nvid = int(vid_of.max()) + 1 if nv else 0
    vframes = rng.integers(32, 181, size=max(nvid, 1))
    zipf = 1.0 / np.arange(1, len(_SOURCES) + 1) ** 1.1
    src = rng.choice(len(_SOURCES), size=n, p=zipf / zipf.sum())
    qi = rng.integers(0, len(_Q_IMG), n)
    ai = rng.integers(0, len(_A), n)
    mcq = rng.random(n) < mcq_share
    suffix = rng.integers(0, 10**9, n)
    dup = rng.random(n) < 0.01
    qs, ans, uids, rows, vkeys, kinds, nat, nfr, bucket = [], [], [], [], [], [], [], [], []
    vi = 0
    turn_of_video: dict[int, int] = {}
    for i in range(n):
        if isv[i]:
            v = int(vid_of[vi]); vi += 1
            t = turn_of_video.get(v, 0); turn_of_video[v] = t + 1
            q = _Q_VID[qi[i] % len(_Q_VID)]
            uids.append(f"vv::v{v}::t{t}"); rows.append(f"v{v}"); vkeys.append(f"video_{v}")
            kinds.append("frames"); nat.append(int(vframes[v])); nfr.append(int(min(vframes[v], 32)))
            bucket.append("short_video")
        else:
            q = _Q_IMG[qi[i]]
            uids.append(f"ov::i{i}::t0"); rows.append(f"i{i}"); vkeys.append(None)
            kinds.append("image"); nat.append(1); nfr.append(1); bucket.append("image_qa")
        if not dup[i]:
            q = f"{q} (item {suffix[i]})"
        if mcq[i]:
            q = q + "\nA. yes\nB. no\nC. maybe"
        qs.append(q)
        ans.append(_A[ai[i]] if dup[i] else f"{_A[ai[i]]} #{suffix[i] % 997}")
    cols = {
        "uid": uids, "row_id": rows, "turn": [int(u.rsplit("::t", 1)[1]) for u in uids],
        "source_file": ["/pool/synthetic.jsonl"] * n, "file_index": [0] * n, "line": list(range(1, n + 1)),
        "format": ["llava"] * n, "bucket": bucket, "question": qs, "answer": ans, "user_msg": [0] * n,
        "asst_msg": [1] * n, "media_kind": kinds, "media": [[]] * n, "media_raw": [[]] * n, "video_key": vkeys,
        "n_frames": nfr, "native_frames": nat, "fps": [None] * n, "duration_s": [None] * n,
        "data_source": [_SOURCES[s] for s in src], "pool_pos": list(range(n)),
    }
    return pa.table({f.name: pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
                     for f in CANDIDATE_SCHEMA}, schema=CANDIDATE_SCHEMA)


def make_descriptors(cand: pa.Table, seed: int = 0, missing_share: float = 0.02, release_names: bool = False,
                     raw: bool = False) -> pa.Table:
    """Descriptor rows for ``cand`` (a ``missing_share`` of candidates get no row).

    ``release_names``: columns named as in the release's merged JSONL (``qa_uid``, ``quality_score``);
    ``raw``: the raw shard columns (no cluster, no quality).
    """
    rng = np.random.default_rng(seed + 1)
    n = cand.num_rows
    keep = rng.random(n) >= missing_share
    isv = np.asarray(cand["bucket"].to_pylist(), dtype=object) == "short_video"
    lv = rng.gamma(2.0, 0.6, n)
    lb = lv + rng.normal(0.3, 0.4, n) + 0.4 * isv
    fd = np.where(isv, rng.beta(2, 8, n), 0.0)
    amm = np.where(isv, rng.gamma(2.0, 1.5, n), 0.0)
    sc = rng.beta(4, 3, n)
    tnc = np.where(isv, (rng.random(n) < 0.35).astype(float), 0.0)
    judge = np.where(isv, rng.random(n), np.nan)
    rep = rng.beta(2, 5, n)
    d = {"uid": cand["uid"].to_pylist(), "loss_video": lv, "loss_blind": lb, "vds": lb - lv,
         "ppl": np.exp(np.clip(lv, -30, 30)), "sc": sc, "tnc": tnc, "amm": amm, "frame_diversity": fd}
    if not raw:
        d.update({"tnc_judge": judge, "cluster_rep": rep, "cluster_hard": 1 - rep})
    t = pa.table(d).filter(pa.array(keep))
    if release_names:
        t = t.rename_columns(["qa_uid" if c == "uid" else c for c in t.column_names])
        if not raw:
            q = 0.5 + 0.1 * rng.normal(size=t.num_rows)
            t = t.append_column("quality_score", pa.array(q))
    return t

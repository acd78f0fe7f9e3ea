"""Write the proof benchmark's candidate pool as gdo pool files (PNG frames + JSONL rows).

Pool recipe (issue 16, scaled to the CPU budget; every share is a parameter):

* ``video_share`` of the candidates are clips (4 frames), the rest images;
* ``goal_share`` of the pool is the goal skill (colour change, "first" / "finally"), all clips;
* the other clips are static questions (half with a moving shape: motion without change) and
  captions of motionless clips; images carry static questions and captions;
* ``noise_share`` of the candidates get a wrong answer; ``dup_share`` are exact copies of another
  candidate (same frames, question and answer), as pools scraped from several sources have.

Rows: ``pool_images.jsonl`` in the LLaVA-OneVision layout (``{"id", "images": [png], "messages",
"data_source"}``) and ``pool_videos.jsonl`` in the LLaVA-Video layout (``{"id", "video_id",
"images": [4 frame pngs], "messages", "data_source"}``). ``truth.jsonl`` keeps, per row id, the
generator's facts (kind, clean, which) for the analysis; gdo never reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

import world


def _write_frames(d: Path, stem: str, frames: np.ndarray) -> list[str]:
    paths = []
    for i, f in enumerate(frames):
        rel = f"media/{stem}_{i}.png"
        cv2.imwrite(str(d / rel), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        paths.append(rel)
    return paths


def make_pool(out: Path, *, n: int, seed: int, video_share: float = 0.4, goal_share: float = 0.04,
              noise_share: float = 0.2, dup_share: float = 0.1) -> dict:
    """Generate and write a pool of ``n`` candidates to ``out``; returns counts per kind."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "media").mkdir(exist_ok=True)
    n_dup = int(round(n * dup_share))
    n_src = n - n_dup
    n_goal = int(round(n * goal_share))
    n_video = int(round(n_src * video_share)) - n_goal
    kinds = ["goal"] * n_goal + ["video"] * n_video + ["image"] * (n_src - n_goal - n_video)
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    samples: list[world.Sample] = []
    for k in kinds:
        if k == "goal":
            s = world.make_goal(rng)
        elif k == "video":
            r = rng.random()
            s = world.make_caption(rng, video=True) if r < 0.25 else world.make_static(rng, video=True, moving=r < 0.65)
        else:
            s = world.make_caption(rng, video=False) if rng.random() < 0.3 else world.make_static(rng, video=False)
        if rng.random() < noise_share:
            s = world.add_noise(rng, s)
        samples.append(s)
    # duplicates: copies of random earlier candidates (same media files, same text)
    src_of = list(range(len(samples))) + [int(rng.integers(len(samples))) for _ in range(n_dup)]
    order = rng.permutation(len(src_of))
    img_rows, vid_rows, truth = [], [], []
    media: dict[int, list[str]] = {}
    counts: dict[str, int] = {}
    for pos in order:
        src = src_of[pos]
        s = samples[src]
        if src not in media:
            media[src] = _write_frames(out, f"m{src:06d}", s.frames)
        rid = f"p{pos:06d}"
        msgs = [{"role": "user", "content": ("<video>\n" if s.is_video else "<image>\n") + s.question},
                {"role": "assistant", "content": s.answer}]
        src_name = {"goal": "clips_change", "static": "clips_qa" if s.is_video else "stills_qa",
                    "caption": "clips_caption" if s.is_video else "stills_caption"}[s.kind]
        if s.is_video:
            vid_rows.append({"id": rid, "video_id": f"v{src:06d}", "images": media[src], "messages": msgs,
                             "data_source": src_name})
        else:
            img_rows.append({"id": rid, "images": media[src], "messages": msgs, "data_source": src_name})
        truth.append({"id": rid, "kind": s.kind, "clean": bool(s.clean), "video": bool(s.is_video), "dup": bool(pos >= n_src),
                      "which": s.meta.get("which"), "question": s.question, "answer": s.answer})
        key = s.kind + ("" if s.clean else "_noisy")
        counts[key] = counts.get(key, 0) + 1
    for name, rows in (("pool_images.jsonl", img_rows), ("pool_videos.jsonl", vid_rows), ("truth.jsonl", truth)):
        with open(out / name, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return counts


def eval_set(kind: str, n: int, seed: int) -> list[world.Sample]:
    """Held-out evaluation questions with clean answers: ``goal`` (colour change, first/finally, half
    each) or ``static`` (the static guard: shape/background colour on images and clips, some moving)."""
    rng = np.random.default_rng(seed)
    if kind == "goal":
        return [world.make_goal(rng, which="first" if i % 2 == 0 else "final") for i in range(n)]
    out = []
    for i in range(n):
        video = i % 2 == 1
        out.append(world.make_static(rng, video=video, moving=video and i % 4 == 3))
    return out

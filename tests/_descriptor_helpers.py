"""Build candidate tables (gdo.schema.CANDIDATE_SCHEMA) directly, for descriptor tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gdo.schema import CANDIDATE_SCHEMA
from gdo.utils.hashing import stable_hash


def cand(uid: str, *, kind: str = "video", media=(), question: str = "What happens?", answer: str = "Something.",
         native=None, data_source: str = "test_src", pool_pos: int = 0, frames: int = 32) -> dict:
    media = [str(m) for m in media]
    bucket = "short_video" if kind in ("video", "frames") else "image_qa"
    vkey = None
    if kind == "video":
        vkey = media[0]
    elif kind == "frames":
        vkey = "frames::" + stable_hash(*media)
    if kind == "frames" and native is None:
        native = len(media)
    n_frames = (min(native, frames) if native is not None else None) if kind in ("video", "frames") else len(media)
    return {
        "uid": uid, "row_id": uid.split("::")[1] if "::" in uid else uid, "turn": 0, "source_file": "/pool.jsonl",
        "file_index": 0, "line": pool_pos + 1, "format": "llava_video" if bucket == "short_video" else "llava_ov",
        "bucket": bucket, "question": question, "answer": answer, "user_msg": 0, "asst_msg": 1,
        "media_kind": kind if media else "none", "media": media, "media_raw": media, "video_key": vkey,
        "n_frames": n_frames, "native_frames": native, "fps": None, "duration_s": None,
        "data_source": data_source, "pool_pos": pool_pos,
    }


def table(rows: list[dict]) -> pa.Table:
    for i, r in enumerate(rows):
        r["pool_pos"] = i
        r["line"] = i + 1
    return pa.Table.from_pylist(rows, schema=CANDIDATE_SCHEMA)


def frames_of(folder: Path) -> list[str]:
    return sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png", ".jpeg"))

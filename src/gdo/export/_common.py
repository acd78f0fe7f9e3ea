"""Shared helpers of the trainer exporters: candidate rows, context turns, system prompts, frame
sampling, frame-list videos and atomic JSON output.

Every exporter writes ONE file per set (subset, baseline) whose records all have the same field
types, so that ms-swift and LLaMA-Factory (which read files with ``datasets.load_dataset("json")``
and concatenate datasets with ``datasets.concatenate_datasets``) load and concatenate them:

- ``images`` and ``videos`` are always lists of path strings (``[]`` when empty);
- a frame list (a video stored as image files) is sampled to at most ``T`` = 32 frames with the
  method's index rule (docs/METHOD.md section 2, :func:`sample_indices`) and written once as a short
  H.264 MP4 at :data:`FRAME_LIST_FPS` frames per second under ``OUT/videos/``, so it is one
  ``videos`` path like any video file. (Both trainers also accept a nested list of frame paths,
  but a file holding a nested list and a path string in ``videos`` cannot be loaded by
  ``datasets``: "The features can't be aligned".)
- the candidate uid is in ``gdo_uid``, a column both trainers drop when they build their own
  columns (ms-swift keeps only its standard keys, LLaMA-Factory's converter maps the columns named
  in dataset_info.json and removes the rest), so it never reaches the model but joins a record
  with ``selection.jsonl``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import orjson
import pyarrow as pa

from gdo.utils.io import atomic_open

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
#: Frames a frame-list video is sampled to (docs/METHOD.md section 2, T = 32).
MAX_FRAMES = 32
#: Frame rate of the MP4 written for a frame list: LLaMA-Factory treats a frame list as a
#: 2 fps video (its ``video_fps`` default) and Qwen-VL's loaders sample videos at 2 fps, so both
#: trainers take every written frame.
FRAME_LIST_FPS = 2
#: Field that carries the candidate uid in ms-swift / LLaMA-Factory records (ignored by both).
UID_FIELD = "gdo_uid"

#: Candidate columns an exporter reads (gdo.schema.CANDIDATE_SCHEMA).
NEEDED = ("uid", "question", "answer", "media_kind", "media", "bucket", "row_id", "turn", "data_source")
_OPTIONAL = ("source_file", "line", "video_key")


def sample_indices(n: int, t: int = MAX_FRAMES) -> list[int]:
    """The method's frame index rule: all of ``range(n)`` when ``n <= t``, else
    ``round(i*(n-1)/(t-1))`` for ``i`` in ``0..t-1`` (docs/METHOD.md section 2).

    Delegates to gdo's one implementation (``gdo.media`` or ``gdo.pool.media``).
    """
    try:
        from gdo.media.sample import sample_indices as _si  # type: ignore[import-not-found]
    except ImportError:
        from gdo.pool.media import sample_indices as _si
    return _si(n, t)


def candidate_rows(candidates: pa.Table, uids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Return the candidates as dicts, in ``uids`` order (all rows in table order when None).

    Args:
        candidates: a table with at least the columns in ``NEEDED`` (CANDIDATE_SCHEMA).
        uids: uids to export; each must be in ``candidates``.

    Raises:
        ValueError: a needed column is missing, or a uid is not a candidate.
    """
    missing = [c for c in NEEDED if c not in candidates.column_names]
    if missing:
        raise ValueError(f"candidates table lacks column(s) {missing} needed for export")
    names = list(NEEDED) + [c for c in _OPTIONAL if c in candidates.column_names]
    cols = {c: candidates.column(c).to_pylist() for c in names}
    rows = [{c: cols[c][i] for c in names} for i in range(candidates.num_rows)]
    if uids is None:
        return rows
    by_uid = {r["uid"]: r for r in rows}
    out = []
    for u in uids:
        if u not in by_uid:
            raise ValueError(f"uid {u!r} is not in the candidates table")
        out.append(by_uid[u])
    return out


def context_turns(candidates: pa.Table, rows: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Earlier (question, answer) turns of each row's conversation, for ``--export-context``.

    Returns uid -> the candidates of the same ``row_id`` (and source file) with a smaller ``turn``,
    in turn order, as (question, answer) pairs (media tokens already stripped by ingest).
    """
    want = {(r.get("source_file"), r["row_id"]) for r in rows if (r.get("turn") or 0) > 0}
    if not want:
        return {}
    sf = candidates.column("source_file").to_pylist() if "source_file" in candidates.column_names \
        else [None] * candidates.num_rows
    rid, turn = candidates.column("row_id").to_pylist(), candidates.column("turn").to_pylist()
    q, a = candidates.column("question").to_pylist(), candidates.column("answer").to_pylist()
    by_row: dict[tuple, list[tuple[int, str, str]]] = {}
    for i in range(candidates.num_rows):
        key = (sf[i], rid[i])
        if key in want:
            by_row.setdefault(key, []).append((int(turn[i]), q[i], a[i]))
    out = {}
    for r in rows:
        t = r.get("turn") or 0
        if t > 0:
            prior = sorted(x for x in by_row.get((r.get("source_file"), r["row_id"]), []) if x[0] < t)
            out[r["uid"]] = [(x[1], x[2]) for x in prior]
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def system_of(rec: Any) -> str | None:
    """The system prompt of one pool record: a top-level ``system`` string, or the first message
    (``messages`` / ``conversations``) whose role (``role`` / ``from``) is ``system``; else None."""
    if not isinstance(rec, dict):
        return None
    if isinstance(rec.get("system"), str) and rec["system"].strip():
        return rec["system"]
    for key in ("messages", "conversations"):
        msgs = rec.get(key)
        if isinstance(msgs, list):
            for m in msgs:
                if isinstance(m, dict) and (m.get("role") or m.get("from")) == "system":
                    text = _text_of(m.get("content", m.get("value")))
                    return text if text.strip() else None
            return None
    return None


def system_prompts(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """uid -> system prompt of the candidate's pool row, re-read from ``source_file`` at ``line``.

    JSONL: ``line`` is the 1-based line; JSON arrays and Parquet: the 1-based record index. Rows
    without a system prompt are absent from the result.

    Raises:
        ValueError: a source file cannot be read, or ``line`` is past its end (file and line named).
    """
    by_file: dict[str, dict[int, list[str]]] = {}
    for r in rows:
        if r.get("source_file") and r.get("line"):
            by_file.setdefault(r["source_file"], {}).setdefault(int(r["line"]), []).append(r["uid"])
    out: dict[str, str] = {}
    for path, lines in by_file.items():
        recs = _records_at(path, sorted(lines))
        for ln, uids in lines.items():
            s = system_of(recs.get(ln))
            if s is not None:
                for u in uids:
                    out[u] = s
    return out


def _records_at(path: str, lines: list[int]) -> dict[int, Any]:
    p = Path(path)
    try:
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            need, got = set(lines), {}
            with open(p, "rb") as f:
                for i, raw in enumerate(f, 1):
                    if i in need:
                        got[i] = orjson.loads(raw)
                        if len(got) == len(need):
                            break
        elif p.suffix.lower() == ".json":
            data = orjson.loads(p.read_bytes())
            data = data if isinstance(data, list) else [data]
            got = {ln: data[ln - 1] for ln in lines if 0 < ln <= len(data)}
        elif p.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            t = pq.read_table(p)
            got = {ln: t.slice(ln - 1, 1).to_pylist()[0] for ln in lines if 0 < ln <= t.num_rows}
        else:
            return {}  # saved HF datasets / other containers: no system prompt recovered
    except (OSError, orjson.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot re-read the pool rows for their system prompts ({e})") from e
    missing = [ln for ln in lines if ln not in got]
    if missing:
        raise ValueError(f"{path}: line {missing[0]} named by candidates.parquet is past the end of the file")
    return got


def media_path(p: str, relative_to: Path | None) -> str:
    """Return ``p`` unchanged (absolute) or relative to ``relative_to`` when given."""
    if relative_to is None:
        return p
    return os.path.relpath(p, relative_to)


def sampled_frames(frames: Sequence[str], t: int = MAX_FRAMES) -> list[str]:
    """The frame paths a frame-list video is exported with: at most ``t`` by :func:`sample_indices`."""
    return [frames[i] for i in sample_indices(len(frames), t)]


def frame_list_video(frames: Sequence[str], out_dir: Path, t: int = MAX_FRAMES) -> Path:
    """Write (once) the MP4 of a frame list, sampled to at most ``t`` frames; return its path.

    The file is ``out_dir/videos/frames_<sha1 of the sampled paths>.mp4``: H.264 (libx264, CRF 17,
    yuv420p), :data:`FRAME_LIST_FPS` fps, every frame resized to the first frame's size (even
    width and height). An existing file of that name is reused (same frames, same bytes).

    Raises:
        ValueError: a frame cannot be read (the frame's path is named).
    """
    import av
    from PIL import Image

    picked = sampled_frames(frames, t)
    key = hashlib.sha1("\n".join(picked).encode("utf-8")).hexdigest()[:16]
    path = out_dir / "videos" / f"frames_{key}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = []
    for fp in picked:
        try:
            with Image.open(fp) as im:
                imgs.append(im.convert("RGB"))
        except OSError as e:
            raise ValueError(f"frame {fp}: cannot be read for the export ({e})") from e
    w, h = imgs[0].size
    w, h = max(2, w - w % 2), max(2, h - h % 2)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as c:
            s = c.add_stream("libx264", rate=FRAME_LIST_FPS)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"crf": "17", "preset": "medium", "threads": "1"}
            for im in imgs:
                arr = np.asarray(im.resize((w, h)) if im.size != (w, h) else im)
                for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def visual(row: dict[str, Any], out_dir: Path, relative_to: Path | None) -> tuple[str, list[str], list[str]]:
    """(token prefix, images, videos) of one candidate for ms-swift / LLaMA-Factory records.

    Images: one ``<image>`` per image; a video file: one ``<video>``; a frame list: one ``<video>``
    and the MP4 of :func:`frame_list_video`.
    """
    kind, media = row["media_kind"], list(row["media"] or [])
    if kind == "image":
        return IMAGE_TOKEN * len(media), [media_path(p, relative_to) for p in media], []
    if kind == "video":
        return VIDEO_TOKEN, [], [media_path(media[0], relative_to)]
    if kind == "frames":
        return VIDEO_TOKEN, [], [media_path(str(frame_list_video(media, out_dir)), relative_to)]
    return "", [], []


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` as UTF-8 JSON lines atomically; return the count."""
    n = 0
    with atomic_open(path, "wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")
            n += 1
    return n


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON atomically (key order as built, non-ASCII kept)."""
    with atomic_open(path, "wb") as f:
        f.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")

"""Goal sets: the user's own evaluation examples that a selection aims at (issue 15).

A goal set is 5 to 5,000 items, each a question with an optional answer and optional media,
read from one or more files:

* ``.txt``: one question per non-empty line (``#`` starts a comment line);
* ``.jsonl`` / ``.json`` whose rows carry a ``question`` key (optional ``answer``, and optional
  ``image`` / ``video`` paths relative to the file): a plain question list;
* any pool format gdo reads (LLaVA, LLaVA-Video, ShareGPT, OpenAI messages, Parquet, HF dataset
  folder): read with :func:`gdo.pool.ingest.ingest`; every (question, answer) turn pair is an
  item and its media are kept (media are never required).

Every problem raises :class:`GoalSetError` naming the file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import orjson

MIN_ITEMS = 5
MAX_ITEMS = 5000


class GoalSetError(ValueError):
    """An invalid goal-set file (the message names file, line and field)."""


@dataclass
class GoalSet:
    """Goal items in file order.

    ``questions`` / ``answers``: str per item (answer "" when the file has none); ``media``: a
    list of resolved media paths per item (empty when none); ``media_kind``: "image", "frames",
    "video" or "none" per item; ``sources``: the files read; ``origin``: "file:line" per item.
    """

    questions: list[str]
    answers: list[str]
    media: list[list[str]] = field(default_factory=list)
    media_kind: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def has_media(self) -> bool:
        return any(self.media)

    def texts(self) -> list[str]:
        """The text embedded per item, built exactly like a candidate's (question, newline, answer)."""
        from gdo.descriptors.embeddings import text_inputs

        return text_inputs(self.questions, self.answers)


def _plain_rows(p: Path, raw: bytes) -> list[tuple[int, dict]] | None:
    """Rows of a JSONL/JSON file if it is a plain question list (every row has ``question``), else None."""
    text = raw.decode("utf-8", errors="strict")
    rows: list[tuple[int, dict]] = []
    if p.suffix.lower() == ".json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise GoalSetError(f"{p}: not valid JSON: {e}") from None
        if isinstance(data, dict):
            data = data.get("questions", data.get("data"))
        if not isinstance(data, list):
            raise GoalSetError(f"{p}: a JSON goal set must be a list of rows (or {{\"questions\": [...]}})")
        for i, r in enumerate(data, 1):
            rows.append((i, r if isinstance(r, dict) else {"question": r} if isinstance(r, str) else r))
    else:
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((i, orjson.loads(line)))
            except orjson.JSONDecodeError as e:
                raise GoalSetError(f"{p}:{i}: not valid JSON: {e}") from None
    if not rows:
        return []
    plain = [isinstance(r, dict) and "question" in r for _, r in rows]
    if not any(plain):
        return None
    if not all(plain):
        bad = next(i for (i, _), ok in zip(rows, plain) if not ok)
        raise GoalSetError(f"{p}:{bad}: field 'question' missing (other rows of this goal set have it)")
    return rows


def _media_of(p: Path, line: int, r: dict) -> tuple[list[str], str]:
    for key, kind in (("image", "image"), ("images", "image"), ("video", "video")):
        v = r.get(key)
        if v is None:
            continue
        vals = [v] if isinstance(v, str) else v
        if not isinstance(vals, list) or not all(isinstance(x, str) and x for x in vals):
            raise GoalSetError(f"{p}:{line}: field '{key}' must be a path or a list of paths")
        paths = [str((p.parent / x).resolve()) if not Path(x).is_absolute() else x for x in vals]
        if kind == "video" and len(paths) > 1:
            kind = "frames"
        return paths, kind
    return [], "none"


def read_goal_set(paths: Sequence[str | Path], *, media_root: str | None = None) -> GoalSet:
    """Read and validate a goal set from one or more files (formats in the module doc).

    Returns:
        :class:`GoalSet` with 5 to 5,000 items.

    Raises:
        GoalSetError: missing/unreadable file, a row without a question (file, line, field), an
            empty question, a wrong type, or fewer than 5 / more than 5,000 items in all.
    """
    if not paths:
        raise GoalSetError("goal set: no file given")
    qs: list[str] = []
    ans: list[str] = []
    media: list[list[str]] = []
    kinds: list[str] = []
    origin: list[str] = []
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise GoalSetError(f"{p}: goal-set file not found")
        if p.is_file() and p.suffix.lower() in (".txt", ".jsonl", ".json"):
            try:
                raw = p.read_bytes()
            except OSError as e:
                raise GoalSetError(f"{p}: cannot read goal-set file: {e}") from None
            if p.suffix.lower() == ".txt":
                try:
                    lines = raw.decode("utf-8").splitlines()
                except UnicodeDecodeError as e:
                    raise GoalSetError(f"{p}: not UTF-8 text: {e}") from None
                for i, line in enumerate(lines, 1):
                    s = line.strip()
                    if not s or s.startswith("#"):
                        continue
                    qs.append(s)
                    ans.append("")
                    media.append([])
                    kinds.append("none")
                    origin.append(f"{p.name}:{i}")
                continue
            rows = _plain_rows(p, raw)
            if rows is not None:
                for i, r in rows:
                    q = r.get("question")
                    if not isinstance(q, str) or not q.strip():
                        raise GoalSetError(f"{p}:{i}: field 'question' must be a non-empty string, got {q!r}")
                    a = r.get("answer", "")
                    if a is None:
                        a = ""
                    if not isinstance(a, (str, int, float)):
                        raise GoalSetError(f"{p}:{i}: field 'answer' must be a string, got {type(a).__name__}")
                    m, k = _media_of(p, i, r)
                    qs.append(q.replace("<image>", "").replace("<video>", "").strip())
                    ans.append(str(a))
                    media.append(m)
                    kinds.append(k)
                    origin.append(f"{p.name}:{i}")
                continue
        # any pool format gdo reads
        from gdo.pool.ingest import ingest

        try:
            res = ingest([str(p)], media_root=media_root, probe_media=False)
        except Exception as e:
            raise GoalSetError(f"{p}: cannot read as a goal set (plain question list or a pool format): {e}") from None
        t = res.candidates
        if t.num_rows == 0:
            rej = res.rejects
            first = (rej[0] if isinstance(rej, list) and rej else None)
            if isinstance(first, dict):  # e.g. "line 3: missing_question: ..." or the file-level reason
                where = f"line {first['line']}: " if first.get("line") else ""
                first = f"{where}{first.get('reason')}: {first.get('detail') or ''}".rstrip(": ")
            detail = (f" (first reject: {first}; goal sets are .txt question lists, JSON/JSONL rows with "
                      "`question`, or any pool format)") if first else ""
            raise GoalSetError(f"{p}: no usable (question, answer) pair in this goal-set file{detail}")
        for q, a, m, k, ln in zip(t["question"].to_pylist(), t["answer"].to_pylist(), t["media"].to_pylist(),
                                  t["media_kind"].to_pylist(), t["line"].to_pylist()):
            qs.append(q or "")
            ans.append(a or "")
            media.append(list(m or []))
            kinds.append(k or "none")
            origin.append(f"{p.name}:{ln}")
    n = len(qs)
    if n < MIN_ITEMS:
        raise GoalSetError(f"goal set ({', '.join(map(str, paths))}): {n} item(s); a goal set needs "
                           f"{MIN_ITEMS} to {MAX_ITEMS:,} items")
    if n > MAX_ITEMS:
        raise GoalSetError(f"goal set ({', '.join(map(str, paths))}): {n:,} items; at most {MAX_ITEMS:,} "
                           "(sample it down: relevance needs a representative set, not all of it)")
    return GoalSet(questions=qs, answers=ans, media=media, media_kind=kinds, origin=origin,
                   sources=[str(Path(x)) for x in paths])

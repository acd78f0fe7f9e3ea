"""Rows -> candidates: turn pairs, media tokens, row ids (GDO_METHOD.md section 2).

A row is normalised whatever its format: the conversation comes from ``messages`` or
``conversations``; roles ``user``/``human``, ``assistant``/``gpt`` (and ``system``); text from
``content`` or ``value`` (a string, or an OpenAI-style content list whose image/video items are
media in place). Row-level media come from ``images``/``image`` and ``videos``/``video``.

Media tokens ``<image>``/``<video>`` are stripped from questions and counted. Their count must
equal the number of media items of their kind (``media_token_mismatch`` otherwise), with two
allowances: a row with no token at all attaches all its media to every turn, and a row whose media
all come from one field may use ``<image>`` for videos (LLaVA-Video writes ``<image>`` for its video;
``<video>`` for an image is a mismatch).
Tokens are *positional* when they occur in more than one user turn: then a candidate's visual
input is the media its own turn's tokens refer to; a turn without a token sees the media of the
earlier turns (the conversation it is part of). Otherwise every candidate gets all the row's media.

``k`` counts kept pairs: a pair with an empty answer is rejected (``empty_answer``) and does not
advance ``k``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from gdo.utils.hashing import stable_hash

from gdo.media.resolve import IMAGE_EXTS, VIDEO_EXTS, ext_of

USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"assistant", "gpt", "bot", "model", "chatgpt"})
SYSTEM_ROLES = frozenset({"system"})

TOKEN_RE = re.compile(r"<image>|<video>")
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image"})
_VIDEO_TYPES = frozenset({"video", "video_url", "input_video"})


class RowReject(Exception):
    """The row gives no candidate. ``reason`` is a reject code; ``detail`` names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Item:
    """One media item of a row. ``kind``: image | video | frames; ``value``: a path, or the frame list.

    ``slot`` says which token refers to it: image | video | any.
    """

    kind: str
    value: Any
    slot: str
    src: str = ""  # the row field it came from (images, image, videos, video) or "inline"


@dataclass(slots=True)
class Pair:
    """A kept (user, assistant) pair: ``items`` indexes Row.items (None = all the row's media)."""

    k: int
    user_msg: int
    asst_msg: int
    question: str
    answer: str
    items: tuple[int, ...] | None


@dataclass(slots=True)
class Row:
    """A parsed row: id, source, media items, kept pairs and candidate-level rejects."""

    row_id: str
    data_source: str
    items: list[Item]
    pairs: list[Pair]
    cand_rejects: list[tuple[str, str, int, int]] = field(default_factory=list)  # reason, detail, user, asst
    is_video: bool = False
    conv_field: str = "messages"
    turn_items: dict[int, list[int]] = field(default_factory=dict)  # user message -> items its tokens refer to
    item_token: dict[int, str] = field(default_factory=dict)  # item -> the token that refers to it
    inline: bool = False  # media inside content lists (OpenAI style)


def content_id(rec: Any) -> str:
    """Content-derived stable row id for a row without ``id``: BLAKE2b of the canonical JSON (sorted keys)."""
    return "h" + stable_hash(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS), digest_size=8)


def _as_path_list(v: Any, fld: str) -> list:
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v else []
    if isinstance(v, list):
        return v
    raise RowReject("wrong_type", f"field '{fld}' must be a string or a list, got {type(v).__name__}")


def _media_path(v: Any, fld: str) -> str:
    if isinstance(v, dict):  # HF Image feature {"path", "bytes"} or {"url": ...}
        p = v.get("path") or v.get("url")
        if isinstance(p, str) and p:
            return p
        raise RowReject("unsupported_media", f"field '{fld}': embedded media without a path")
    if not isinstance(v, str) or not v:
        raise RowReject("wrong_type", f"field '{fld}': media path must be a non-empty string, got {v!r:.60}")
    return v


def _classify(path: str, default: str) -> str:
    e = ext_of(path)
    if e in VIDEO_EXTS and not (default == "image" and e == ".gif"):
        return "video"
    if e in IMAGE_EXTS or (e == ".gif"):
        return "image"
    if e == "":
        return "frames"  # a frame folder
    return default


def media_fields(rec: dict) -> tuple[Any, str, Any, str]:
    """``(images, images field name, videos, videos field name)`` of a record: ``images`` else
    ``image``, ``videos`` else ``video`` (values as written, possibly None)."""
    images, ifld = rec.get("images"), "images"
    if images is None:
        images, ifld = rec.get("image"), "image"
    videos, vfld = rec.get("videos"), "videos"
    if videos is None:
        videos, vfld = rec.get("video"), "video"
    return images, ifld, videos, vfld


def row_items(rec: dict, fmt: str) -> list[Item]:
    """Row-level media items (``images``/``image``, ``videos``/``video``) of a record.

    LLaVA-Video rows (``fmt == 'llava_video'``, or a row with ``video_id``): a list of image paths in
    ``images`` is ONE frame list (a video); ``video`` is then only an identifier.

    Raises:
        RowReject: ``wrong_type`` / ``unsupported_media``.
    """
    images, ifld, videos, vfld = media_fields(rec)
    ilist = _as_path_list(images, ifld)
    items: list[Item] = []
    llava_video = fmt == "llava_video" or "video_id" in rec
    if llava_video and ilist:
        if len(ilist) == 1:
            p = _media_path(ilist[0], ifld)
            kind = _classify(p, "image")
            items.append(Item("frames" if kind == "image" else kind, [p] if kind == "image" else p, "any", ifld))
            return items
        # a frame list: every entry a non-empty string; first and last must look like images
        for p in ilist:
            if type(p) is not str or not p:
                _media_path(p, ifld)  # raises the precise error
        if _classify(ilist[0], "image") != "image" or _classify(ilist[-1], "image") != "image":
            raise RowReject("wrong_type", f"field '{ifld}' mixes frames and video files")
        items.append(Item("frames", ilist, "any", ifld))
        return items
    for p in ilist:
        p = _media_path(p, ifld)
        items.append(Item(_classify(p, "image"), p, "image", ifld))
    for v in _as_path_list(videos, vfld):
        if isinstance(v, list):
            if not v:
                raise RowReject("wrong_type", f"field '{vfld}': empty frame list")
            items.append(Item("frames", [_media_path(p, vfld) for p in v], "video", vfld))
        else:
            p = _media_path(v, vfld)
            items.append(Item(_classify(p, "video"), p, "video", vfld))
    return items


def _message(m: Any, i: int, conv_field: str) -> tuple[str, str, list[Item]]:
    if not isinstance(m, dict):
        raise RowReject("wrong_type", f"{conv_field}[{i}] must be an object, got {type(m).__name__}")
    role = m.get("role")
    if role is None:
        role = m.get("from")
    if not isinstance(role, str):
        raise RowReject("wrong_type", f"{conv_field}[{i}]: missing or non-string role")
    role = role.lower()
    if role in USER_ROLES:
        role = "user"
    elif role in ASSISTANT_ROLES:
        role = "assistant"
    elif role in SYSTEM_ROLES:
        role = "system"
    else:
        raise RowReject("wrong_type", f"{conv_field}[{i}]: unknown role {role!r}")
    c = m.get("content")
    if c is None:
        c = m.get("value")
    if isinstance(c, str):
        return role, c, []
    if isinstance(c, list):
        texts: list[str] = []
        inline: list[Item] = []
        for j, part in enumerate(c):
            if isinstance(part, str):
                texts.append(part)
                continue
            if not isinstance(part, dict):
                raise RowReject("wrong_type", f"{conv_field}[{i}].content[{j}] must be an object")
            t = part.get("type")
            if t == "text":
                s = part.get("text")
                if s is None:
                    s = part.get("value")
                if not isinstance(s, str):
                    raise RowReject("wrong_type", f"{conv_field}[{i}].content[{j}]: text must be a string")
                texts.append(s)
            elif t in _IMAGE_TYPES or t in _VIDEO_TYPES:
                v = part.get(t)
                if v is None:
                    v = part.get("value", part.get("url", part.get("path")))
                p = _media_path(v, f"{conv_field}[{i}].content[{j}]")
                kind = _classify(p, "image" if t in _IMAGE_TYPES else "video")
                inline.append(Item(kind, p, "image" if t in _IMAGE_TYPES else "video", "inline"))
            else:
                raise RowReject("wrong_type", f"{conv_field}[{i}].content[{j}]: unknown type {t!r}")
        return role, "\n".join(texts), inline
    raise RowReject("wrong_type",
                    f"{conv_field}[{i}]: content must be a string or a list, got {type(c).__name__}")


def parse_row(rec: Any, fmt: str) -> Row:
    """Parse one pool record into a Row (kept pairs numbered k = 0, 1, ...).

    Args:
        rec: the decoded JSON object (dict) of the row.
        fmt: the file's format name (``llava_video`` changes how ``images`` is read).

    Raises:
        RowReject: reasons ``wrong_type``, ``no_messages``, ``assistant_first``, ``no_pairs``,
        ``media_token_mismatch``, ``empty_answer`` (every pair empty), ``unsupported_media``,
        ``mixed_media``.
    """
    if not isinstance(rec, dict):
        raise RowReject("wrong_type", f"row must be a JSON object, got {type(rec).__name__}")
    conv_field = "messages"
    msgs = rec.get("messages")
    if msgs is None:
        msgs = rec.get("conversations")
        conv_field = "conversations" if "conversations" in rec else conv_field
    if msgs is None:
        raise RowReject("no_messages", "no 'messages' or 'conversations' (missing or null)")
    if not isinstance(msgs, list):
        raise RowReject("wrong_type", f"field '{conv_field}' must be a list, got {type(msgs).__name__}")
    if not msgs:
        raise RowReject("no_messages", f"field '{conv_field}' is empty")

    rid = rec.get("id")
    if rid is None:
        row_id = content_id(rec)
    elif isinstance(rid, str) and rid:
        row_id = rid
    elif isinstance(rid, (int, float)) and not isinstance(rid, bool):
        row_id = str(rid)
    else:
        raise RowReject("wrong_type", f"field 'id' must be a non-empty string or a number, got {rid!r:.60}")
    ds = rec.get("data_source")
    if ds is None:
        ds = rec.get("source", "")
    data_source = ds if isinstance(ds, str) else str(ds)

    parsed = [_message(m, i, conv_field) for i, m in enumerate(msgs)]
    inline_items: list[Item] = []
    inline_owner: list[int] = []
    for i, (_, _, inl) in enumerate(parsed):
        for it in inl:
            inline_items.append(it)
            inline_owner.append(i)

    # --- pairs
    pairs_idx: list[tuple[int, int]] = []
    cand_rejects: list[tuple[str, str, int, int]] = []
    pending = -1
    seen_non_system = False
    for i, (role, _, _) in enumerate(parsed):
        if role == "system":
            continue
        if not seen_non_system:
            seen_non_system = True
            if role == "assistant":
                raise RowReject("assistant_first", f"{conv_field}[{i}] is an assistant message before any user message")
        if role == "user":
            if pending >= 0:
                cand_rejects.append(("unpaired_turn", f"{conv_field}[{pending}]: user message without an answer",
                                     pending, -1))
            pending = i
        elif pending < 0:
            cand_rejects.append(("unpaired_turn", f"{conv_field}[{i}]: assistant message without a question", -1, i))
        else:
            pairs_idx.append((pending, i))
            pending = -1
    if pending >= 0:
        if not pairs_idx:
            raise RowReject("no_pairs", f"{conv_field}: user message(s) with no assistant answer")
        cand_rejects.append(("unpaired_turn", f"{conv_field}[{pending}]: user message without an answer",
                             pending, -1))
    if not pairs_idx:
        raise RowReject("no_pairs", f"{conv_field}: no (user, assistant) pair")

    # --- media + tokens
    item_token = {}
    if inline_items:
        items = inline_items
        owners = inline_owner
        positional = len({o for o in owners if parsed[o][0] == "user"}) > 1
        turn_items: dict[int, list[int]] = {}
        for j, o in enumerate(owners):
            turn_items.setdefault(o, []).append(j)
    else:
        items = row_items(rec, fmt)
        turn_items = {}
        positional = False
        tok_msgs = 0
        n_img_tok = n_vid_tok = 0
        order: list[tuple[int, str]] = []  # (message index, token) in order of appearance
        for i, (role, text, _) in enumerate(parsed):
            if role != "user" or "<" not in text:
                continue
            toks = TOKEN_RE.findall(text)
            if toks:
                tok_msgs += 1
                for t in toks:
                    order.append((i, t))
                    if t == "<image>":
                        n_img_tok += 1
                    else:
                        n_vid_tok += 1
        if order:
            n_items = len(items)
            img_items = [j for j, it in enumerate(items) if it.slot == "image"]
            vid_items = [j for j, it in enumerate(items) if it.slot == "video"]
            one_field = len({it.slot for it in items}) <= 1
            if n_img_tok == len(img_items) and n_vid_tok == len(vid_items) and not any(
                    it.slot == "any" for it in items):
                ii = iter(img_items)
                vi = iter(vid_items)
                assign = [(m, next(ii) if t == "<image>" else next(vi)) for m, t in order]
            elif (one_field and n_img_tok + n_vid_tok == n_items
                  and (n_vid_tok == 0 or all(it.kind != "image" for it in items))):
                assign = [(m, j) for j, (m, _) in enumerate(order)]
            else:
                raise RowReject(
                    "media_token_mismatch",
                    f"{n_img_tok} <image> and {n_vid_tok} <video> token(s) for "
                    f"{sum(1 for it in items if it.slot != 'video')} image-field and "
                    f"{sum(1 for it in items if it.slot == 'video')} video-field media item(s)")
            del n_items
            positional = tok_msgs > 1
            for (m, j), (_, t) in zip(assign, order):
                turn_items.setdefault(m, []).append(j)
                item_token[j] = t

    is_video = any(it.kind != "image" for it in items)
    pairs: list[Pair] = []
    k = 0
    seen_items: list[int] = []
    turn_pos = 0
    user_order = sorted(turn_items)
    for u, a in pairs_idx:
        q = parsed[u][1]
        if "<" in q:
            q = TOKEN_RE.sub("", q)
        q = q.strip()
        ans = parsed[a][1]
        sel: tuple[int, ...] | None = None
        if positional:
            while turn_pos < len(user_order) and user_order[turn_pos] < u:
                seen_items.extend(turn_items[user_order[turn_pos]])
                turn_pos += 1
            own = turn_items.get(u)
            sel = tuple(own) if own else tuple(dict.fromkeys(seen_items))
        if not ans.strip():
            cand_rejects.append(("empty_answer", f"{conv_field}[{a}]: empty answer", u, a))
            continue
        if sel is not None and len(sel) > 1 and any(items[j].kind != "image" for j in sel):
            cand_rejects.append(("mixed_media", f"{conv_field}[{u}]: turn refers to several media incl. a video",
                                 u, a))
            continue
        pairs.append(Pair(k, u, a, q, ans, sel))
        k += 1
    if not pairs:
        r, d, _, _ = cand_rejects[-1] if cand_rejects else ("no_pairs", "no kept pair", -1, -1)
        raise RowReject(r, d)
    if not positional and len(items) > 1 and is_video:
        raise RowReject("mixed_media", "row has several media items including a video, without positional tokens")
    return Row(row_id, data_source, items, pairs, cand_rejects, is_video, conv_field, turn_items, item_token,
               bool(inline_items))

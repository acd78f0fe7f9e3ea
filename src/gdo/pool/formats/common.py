"""What every row format shares: roles, media tokens, the row model, parse and rewrite.

A row is normalised whatever its format: the conversation comes from ``messages`` or
``conversations``; roles (see ``USER_ROLES``/``ASSISTANT_ROLES``/``SYSTEM_ROLES``); text from
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

``k`` counts kept pairs (GDO_METHOD.md section 2): a pair whose question is empty after removing
the media tokens (``empty_question``, e.g. ``"<image>" -> "A cat."``) or whose answer is empty
(``empty_answer``) is a candidate-level reject and does not advance ``k``; this is what the
authors' release does (its pair parser skips such pairs), so uids join its metric files. It is the
same in every mode: uids must not depend on the mode, since one ingest serves all modes.

Each format module (``llava_ov``, ``llava_video``, ``llava``, ``sharegpt``, ``openai_content``)
is a :class:`RowFormat`: ``detect`` (does a record look like this format), ``parse`` (record ->
:class:`Row`), ``fast`` (the ingest fast path: the common shapes straight to turns and raw media
references, or None) and ``rewrite`` (record + chosen turn pairs -> record in the same format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from gdo.utils.hashing import stable_hash

from gdo.media import IMAGE_EXTS, VIDEO_EXTS, ext_of, sample_indices

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


def row_items(rec: dict, frame_list: bool) -> list[Item]:
    """Row-level media items (``images``/``image``, ``videos``/``video``) of a record.

    ``frame_list`` (LLaVA-Video rows, see ``gdo.pool.formats.llava_video``): a list of image paths
    in ``images`` is ONE frame list (a video); ``video`` is then only an identifier.

    Raises:
        RowReject: ``wrong_type`` / ``unsupported_media``.
    """
    images, ifld, videos, vfld = media_fields(rec)
    ilist = _as_path_list(images, ifld)
    items: list[Item] = []
    if frame_list and ilist:
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


def _role(r: Any, conv_field: str, i: int, key: str) -> str | None:
    """Normalised role (user | assistant | system) of a ``role``/``from`` value; None when absent.
    Spellings are case-insensitive: ``USER_ROLES``, ``ASSISTANT_ROLES``, ``SYSTEM_ROLES``."""
    if r is None:
        return None
    if not isinstance(r, str):
        raise RowReject("wrong_type", f"{conv_field}[{i}]: non-string '{key}' {r!r:.40}")
    r = r.lower()
    if r in USER_ROLES:
        return "user"
    if r in ASSISTANT_ROLES:
        return "assistant"
    if r in SYSTEM_ROLES:
        return "system"
    raise RowReject("wrong_type", f"{conv_field}[{i}]: unknown {key} {r!r}")


def assign_tokens(items: list[Item], toks: list[str]) -> list[int] | None:
    """The media item each token refers to (tokens in order of appearance), or None on a mismatch.

    Per kind when the counts match (``<image>`` -> image-field items, ``<video>`` -> video-field
    items, in order); else, when all media come from one field, in order of appearance provided
    ``<video>`` never refers to an image (LLaVA-Video writes ``<image>`` for its video).
    """
    n_img_tok = sum(1 for t in toks if t == "<image>")
    n_vid_tok = len(toks) - n_img_tok
    img_items = [j for j, it in enumerate(items) if it.slot == "image"]
    vid_items = [j for j, it in enumerate(items) if it.slot == "video"]
    if n_img_tok == len(img_items) and n_vid_tok == len(vid_items) and not any(it.slot == "any" for it in items):
        ii, vi = iter(img_items), iter(vid_items)
        return [next(ii) if t == "<image>" else next(vi) for t in toks]
    if (len({it.slot for it in items}) <= 1 and len(toks) == len(items)
            and (n_vid_tok == 0 or all(it.kind != "image" for it in items))):
        return list(range(len(toks)))
    return None


def _message(m: Any, i: int, conv_field: str) -> tuple[str, str, list[Item]]:
    if not isinstance(m, dict):
        raise RowReject("wrong_type", f"{conv_field}[{i}] must be an object, got {type(m).__name__}")
    role = _role(m.get("role"), conv_field, i, "role")
    frm = m.get("from")
    if role is None:
        role = _role(frm, conv_field, i, "from")
        if role is None:
            raise RowReject("wrong_type", f"{conv_field}[{i}]: missing role (no 'role' or 'from')")
    elif frm is not None and _role(frm, conv_field, i, "from") != role:
        raise RowReject("role_conflict", f"{conv_field}[{i}]: 'role' is {m.get('role')!r} but 'from' is {frm!r}")
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
                raise RowReject("unsupported_part", f"{conv_field}[{i}].content[{j}]: unsupported part type {t!r}")
        return role, "\n".join(texts), inline
    raise RowReject("wrong_type",
                    f"{conv_field}[{i}]: content must be a string or a list, got {type(c).__name__}")


def parse_conversation(rec: Any, frame_list: bool) -> Row:
    """Parse one pool record into a Row (kept pairs numbered k = 0, 1, ...).

    Args:
        rec: the decoded JSON object (dict) of the row.
        frame_list: read ``images`` as one frame list (LLaVA-Video rows; see ``row_items``).

    Raises:
        RowReject: reasons ``wrong_type``, ``role_conflict`` (``role`` and ``from`` disagree),
        ``no_messages``, ``assistant_first``, ``no_pairs``, ``media_in_answer`` (a media token or
        part in an assistant message), ``media_token_mismatch``, ``empty_question`` /
        ``empty_answer`` (every pair empty), ``unsupported_media``, ``mixed_media``.
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
    if rid is None or rid == "":
        row_id = content_id(rec)  # an empty-string id is kept under this stable internal id
    elif isinstance(rid, str) and rid:
        row_id = rid
    elif isinstance(rid, (int, float)) and not isinstance(rid, bool):
        row_id = str(rid)
    else:
        raise RowReject("wrong_type", f"field 'id' must be a string or a number, got {rid!r:.60}")
    ds = rec.get("data_source")
    if ds is None:
        ds = rec.get("source", "")
    data_source = ds if isinstance(ds, str) else str(ds)

    parsed = [_message(m, i, conv_field) for i, m in enumerate(msgs)]
    for i, (role, text, inl) in enumerate(parsed):
        if role == "assistant" and (inl or ("<" in text and TOKEN_RE.search(text))):
            raise RowReject("media_in_answer", f"{conv_field}[{i}]: an assistant message holds "
                            f"{'a media part' if inl else 'a media token ' + TOKEN_RE.search(text).group()}; "
                            "media belong to user turns")
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
        row_level = row_items(rec, frame_list)
        if row_level:  # media both in content parts and in the row's media fields
            inl = sorted(str(it.value) for it in items)
            rl = sorted(str(it.value) for it in row_level)
            if inl != rl:
                raise RowReject("media_token_mismatch",
                                f"{len(inl)} media in content parts and {len(rl)} different ones in "
                                f"'{row_level[0].src}': ambiguous")
            # the same media named twice: counted once (the parts, in place)
        positional = len({o for o in owners if parsed[o][0] == "user"}) > 1
        turn_items: dict[int, list[int]] = {}
        for j, o in enumerate(owners):
            turn_items.setdefault(o, []).append(j)
    else:
        items = row_items(rec, frame_list)
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
            assign_j = assign_tokens(items, [t for _, t in order])
            if assign_j is None:
                raise RowReject(
                    "media_token_mismatch",
                    f"{n_img_tok} <image> and {n_vid_tok} <video> token(s) for "
                    f"{sum(1 for it in items if it.slot != 'video')} image-field and "
                    f"{sum(1 for it in items if it.slot == 'video')} video-field media item(s)")
            assign = [(m, j) for (m, _), j in zip(order, assign_j)]
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
        if not q:
            cand_rejects.append(("empty_question",
                                 f"{conv_field}[{u}]: question empty after removing media tokens", u, a))
            continue
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
def rewrite_view(rec: Any, frame_list: bool, kept: list[tuple[int, int]]) -> Row | None:
    """A :class:`Row` equivalent, for :func:`rewrite_row` and the pairs ``kept``, to
    ``parse_conversation(rec, frame_list)``,
    built without validating the media; None when the row is not of the common shape handled here.

    Handled: a dict row whose messages are all objects with a user/assistant role and string text
    (no system message, no content lists), whose ``<image>``/``<video>`` tokens (if any) are all in
    one user message (non-positional: every pair refers to all the row's media), with row-level
    media either a LLaVA-Video frame list (more than one path) or image/video paths given as
    strings. Only the fields :func:`rewrite_row` reads are filled: ``conv_field``, ``items``,
    ``turn_items``, ``item_token``, ``inline`` and the kept pairs (``items=None``).
    """
    if not isinstance(rec, dict):
        return None
    conv_field = "messages"
    msgs = rec.get("messages")
    if msgs is None:
        msgs = rec.get("conversations")
        conv_field = "conversations" if "conversations" in rec else conv_field
    if not isinstance(msgs, list) or not msgs:
        return None
    tok_msg = -1
    toks: list[str] = []
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            return None
        role = m.get("role")
        if role is None:
            role = m.get("from")
        if not isinstance(role, str):
            return None
        role = role.lower()
        c = m.get("content")
        if c is None:
            c = m.get("value")
        if not isinstance(c, str):
            return None
        if role in USER_ROLES:
            if "<" in c:
                t = TOKEN_RE.findall(c)
                if t:
                    if tok_msg >= 0:
                        return None  # positional tokens: general path
                    tok_msg, toks = i, t
        elif role not in ASSISTANT_ROLES:
            return None  # system or unknown role: general path
    pairs = [Pair(k, u, a, "", "", None) for k, (u, a) in enumerate(kept)]
    try:
        items = row_items(rec, frame_list)
    except RowReject:
        return None  # the general path reports it
    if len(items) > 1 and any(it.kind != "image" for it in items):
        return None  # mixed_media (unless positional, which is the general path's)
    if tok_msg < 0:  # no token: every pair refers to all the media (tokens implied)
        return Row("", "", items, pairs, conv_field=conv_field)
    assign = assign_tokens(items, toks)
    if assign is None:
        return None  # media_token_mismatch: the general path reports it
    return Row("", "", items, pairs, conv_field=conv_field, turn_items={tok_msg: assign},
               item_token={j: t for j, t in zip(assign, toks)})


def rewrite_row(rec: dict, row: Row, kept: list[tuple[int, int]]) -> dict:
    """Return a copy of ``rec`` holding only the (user, assistant) message pairs ``kept``.

    System messages are kept. Media lists are filtered to the media the kept turns refer to
    (see the module docstring). ``row`` is ``parse_conversation(rec, ...)`` (or ``rewrite_view``).
    """
    msgs = rec[row.conv_field]
    keep_set = {i for pair in kept for i in pair}
    pair_by_user = {p.user_msg: p for p in row.pairs}
    out = dict(rec)
    new_msgs: list[Any] = []
    if not row.turn_items and not row.inline:
        # no tokens: every turn sees all the row's media (they precede the first question, as in
        # LLaVA); keep the media and write the implied tokens at the start of the first kept
        # question, so a trainer that counts tokens (LLaMA-Factory, ms-swift) finds them
        first = bool(row.items)
        for i, m in enumerate(msgs):
            if i in keep_set or _is_system(m):
                if first and i in pair_by_user:
                    m = _prepend_media(m, row, list(range(len(row.items))))
                    first = False
                new_msgs.append(m)
        out[row.conv_field] = new_msgs
        return out
    referenced: list[int] = []  # items in order of reference in the kept messages
    ref_set: set[int] = set()
    for i, m in enumerate(msgs):
        if not (i in keep_set or _is_system(m)):
            continue
        own = row.turn_items.get(i, []) if i in keep_set else []
        p = pair_by_user.get(i) if i in keep_set else None
        need = list(range(len(row.items))) if (p is not None and p.items is None) else list(p.items) if p else []
        missing = [j for j in need if j not in ref_set and j not in own]
        if missing:
            m = _prepend_media(m, row, missing)
        for j in missing + own:
            if j not in ref_set:
                ref_set.add(j)
                referenced.append(j)
        new_msgs.append(m)
    out[row.conv_field] = new_msgs
    if row.inline:
        return out
    # rebuild each media field in reference order (per field, as tokens map per field)
    by_src: dict[str, list[Any]] = {}
    for j in referenced:
        it = row.items[j]
        by_src.setdefault(it.src, []).append(it.value)
    for src in {it.src for it in row.items}:
        vals = by_src.get(src, [])
        orig = rec.get(src)
        if isinstance(orig, str):
            if vals:
                out[src] = vals[0]
            else:
                out.pop(src, None)
        elif row.items and row.items[0].kind == "frames" and row.items[0].slot == "any":
            out[src] = orig if vals else []
        else:
            out[src] = vals
    return out


def _is_system(m: Any) -> bool:
    return isinstance(m, dict) and str(m.get("role", m.get("from", ""))).lower() == "system"


def _prepend_media(m: dict, row: Row, items: list[int]) -> dict:
    m = dict(m)
    key = "content" if "content" in m else "value"
    c = m.get(key)
    if row.inline:
        parts = []
        for j in items:
            it = row.items[j]
            t = "image_url" if it.slot == "image" else "video_url"
            parts.append({"type": t, "value": it.value} if any(
                isinstance(x, dict) and "value" in x for x in (c or [])) else {"type": t, t: it.value})
        m[key] = parts + list(c or [])
        return m
    toks = "".join(row.item_token.get(j, "<video>" if row.items[j].slot == "video" else "<image>") for j in items)
    m[key] = toks + (c or "")
    return m




# --------------------------------------------------------------------------- fast path (shared part)
def fast_turns(rec: dict) -> tuple[str, list[str], list[str], int, int] | None:
    """The message part of the ingest fast path: ``(row id, questions, answers, n tokens, n <video>)``.

    Handles plain alternating user/assistant string messages (roles spelled exactly ``user``/
    ``human`` and ``assistant``/``gpt``), a non-empty string id, non-blank answers, and media tokens
    only in the first question (at most one). Anything else returns None and takes
    :func:`parse_conversation`, which gives the same turns (property test in
    tests/pool/test_format_paths.py).
    """
    msgs = rec.get("messages")
    if msgs is None:
        msgs = rec.get("conversations")
    if type(msgs) is not list:
        return None
    n = len(msgs)
    if n < 2 or n & 1:
        return None
    rid = rec.get("id")
    if type(rid) is not str or not rid:
        return None
    qs = []
    ans = []
    ntok = 0
    nvid = 0
    first = True
    it = iter(msgs)
    for u, a in zip(it, it):
        if type(u) is not dict or type(a) is not dict:
            return None
        ur = u.get("role")
        if ur is None:
            ur = u.get("from")
        elif "from" in u:
            return None  # role and from both given: the general path checks they agree
        ar = a.get("role")
        if ar is None:
            ar = a.get("from")
        elif "from" in a:
            return None
        if (ur != "user" and ur != "human") or (ar != "assistant" and ar != "gpt"):
            return None  # (any other role, also a non-string one, takes the general path)
        uc = u.get("content")
        if uc is None:
            uc = u.get("value")
        ac = a.get("content")
        if ac is None:
            ac = a.get("value")
        if type(uc) is not str or type(ac) is not str or not ac or ac.isspace():
            return None
        if "<" in ac and ("<image>" in ac or "<video>" in ac):
            return None  # media_in_answer: the general path rejects it
        if "<" in uc:
            nv = uc.count("<video>")
            c = uc.count("<image>") + nv
            if c:
                if not first:
                    return None
                ntok = c
                nvid = nv
                uc = uc.replace("<image>", "").replace("<video>", "")
        first = False
        uc = uc.strip()
        if not uc:
            return None  # empty_question: the general path rejects the pair
        qs.append(uc)
        ans.append(ac)
    if ntok > 1:
        return None
    return rid, qs, ans, ntok, nvid


def has_ext(p: Any, exts: frozenset) -> bool:
    """True when ``p`` is a string whose extension (``ext_of``) is in ``exts`` (fast, no os.path)."""
    if type(p) is not str:
        return False
    d = p.rfind(".")
    return d > 0 and p[d - 1] not in "./" and p[d:].lower() in exts and "/" not in p[d:]


def fast_video_file(videos: Any) -> tuple[str, list[str]] | None:
    """Fast-path media for a row whose only media field is a video (one path, or a list of one)."""
    if type(videos) is list:
        if len(videos) != 1:
            return None
        videos = videos[0]
    if type(videos) is not str or not videos or not has_ext(videos, VIDEO_EXTS):
        return None
    return "video", [videos]


#: What ``RowFormat.fast`` returns: (row id, questions, answers, media kind, raw media paths, number
#: of media tokens). kind: ``none`` (raw = []), ``image`` (one path), ``video`` (one file),
#: ``frames`` (one frame list).
FastRow = tuple[str, list[str], list[str], str, list, int]


class RowFormat:
    """One input row format: detection, parse, the fast ingest specialisation, and rewrite.

    Subclasses set ``name`` and override ``detect`` and ``fast_media``; ``frame_list`` says whether
    ``images`` is read as one frame list (LLaVA-Video).
    """

    name = ""
    frame_list = False

    def detect(self, rec: dict, first: dict | None) -> bool:  # pragma: no cover - abstract
        """True when a record (a dict with a conversation; ``first`` its first message object)
        looks like this format. Formats are tried in ``gdo.pool.formats.DETECT_ORDER``."""
        raise NotImplementedError

    def parse(self, rec: Any) -> Row:
        """Record -> :class:`Row` (see :func:`parse_conversation`). Raises RowReject."""
        return parse_conversation(rec, self.frame_list)

    def fast_media(self, rec: dict, ntok: int, nvid: int) -> tuple[str, list] | None:
        """Media part of the fast path: ``(kind, raw paths)`` or None (general path)."""
        return None

    def fast(self, rec: dict) -> FastRow | None:
        """The ingest fast path for the common shapes of this format, or None.

        When not None, it equals what ``parse`` gives for the record (same questions, answers,
        media kind and paths; property test in tests/pool/test_format_paths.py). Path resolution,
        confinement and the video key are the caller's (``gdo.pool.ingest``).
        """
        t = fast_turns(rec)
        if t is None:
            return None
        m = self.fast_media(rec, t[3], t[4])
        if m is None:
            return None
        return t[0], t[1], t[2], m[0], m[1], t[3]

    def rewrite(self, rec: dict, kept: list[tuple[int, int]], frames: int | None = None) -> dict:
        """Return ``rec`` with only the (user message, assistant message) pairs ``kept``, in this
        format (see :func:`rewrite_row`); with ``frames`` (T), every frame list longer than T is
        sampled to T frames (:func:`sample_frame_lists`).

        Raises:
            RowReject: the record no longer parses.
        """
        row = rewrite_view(rec, self.frame_list, kept)
        if row is None:
            row = self.parse(rec)
        out = rewrite_row(rec, row, kept)
        if frames is not None:
            out = sample_frame_lists(out, self.frame_list, frames) or out
        return out

    def sample_frames(self, rec: dict, frames: int) -> dict | None:
        """``rec`` with its frame lists sampled to at most ``frames``; None when none is longer."""
        return sample_frame_lists(rec, self.frame_list, frames)


def sample_frame_lists(rec: Any, frame_list: bool, T: int) -> dict | None:
    """A copy of ``rec`` whose frame lists hold at most ``T`` frames, or None if none is longer.

    Frame lists: ``images``/``image`` of a LLaVA-Video row (``frame_list``), and every list inside
    ``videos``/``video``. A list of n > T frames keeps frames ``sample_indices(n, T)`` (GDO_METHOD.md
    section 2: index_i = round(i*(n-1)/(T-1)), the rule the release uses when it writes its
    subsets), in order; tokens are left as written (one token refers to the whole list).
    """
    if not isinstance(rec, dict):
        return None
    out = None
    images, ifld, videos, vfld = media_fields(rec)
    if frame_list and isinstance(images, list) and len(images) > T:
        out = dict(rec)
        out[ifld] = [images[i] for i in sample_indices(len(images), T)]
    if isinstance(videos, list) and any(isinstance(v, list) and len(v) > T for v in videos):
        out = dict(rec) if out is None else out
        out[vfld] = [[v[i] for i in sample_indices(len(v), T)] if isinstance(v, list) and len(v) > T else v
                     for v in videos]
    return out


def fast_image_or_video(rec: dict, ntok: int, nvid: int) -> tuple[str, list] | None:
    """Fast-path media of image-QA formats (LLaVA-OneVision, LLaVA, ShareGPT): no media, one image
    (``images``/``image``: a path or a list of one, with no ``<video>`` token), or one video file
    (``videos``/``video``) when there is no image field. Anything else: None."""
    images = rec.get("images")
    if images is None:
        images = rec.get("image")
    videos = rec.get("videos")
    if videos is None:
        videos = rec.get("video")
    if videos is not None:
        if images is not None:
            return None
        return fast_video_file(videos)
    if images is None or images == []:
        return None if ntok else ("none", [])
    if type(images) is str:
        images = [images]
    elif type(images) is not list or len(images) != 1:
        return None
    p = images[0]
    if nvid or not has_ext(p, IMAGE_EXTS):
        return None  # <video> for an image is a mismatch: the general path rejects it
    return "image", images

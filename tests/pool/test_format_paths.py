"""Property tests (hypothesis): each row format's fast path agrees with its general parse
(issue 11 item 4), per row and through ``ingest`` (fast path on vs off)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdo.pool import formats as F
from gdo.pool import ingest as ingest_mod
from gdo.pool.formats.common import RowReject

IMG = st.sampled_from(["a.jpg", "d/b.png", "c.JPEG", "x.webp", "noext", "", "v.mp4", "./e.jpg", "../f.png", "/abs/g.jpg"])
VID = st.sampled_from(["clip.mp4", "d/c.webm", "anim.gif", "x.jpg", "folder", "", "/abs/v.mkv"])
USER = st.sampled_from(["user"] * 6 + ["human"] * 6 + ["User", "system", "assistant", None, 3])
ASST = st.sampled_from(["assistant"] * 6 + ["gpt"] * 6 + ["bot", "Assistant", "user", None])
TEXT = st.sampled_from(["What is it?", "<image>What?", "<image>\nWhat?", "<video>Why?", "  ", "", "<image><image>Two?",
                        "Describe <image> this", "<image>", "x < y", "Q\n", "café?"])
ANSWER = st.sampled_from(["A cat.", "Yes", "b", "c", "d", "", "   ", "<image>No"])


@st.composite
def messages(draw, style: str):
    n = draw(st.sampled_from([1, 1, 1, 2, 2, 3, 0, 4]))
    out = []
    for _ in range(n):
        for role, text in ((draw(USER), draw(TEXT)), (draw(ASST), draw(ANSWER))):
            if style == "llava":
                m = {"from": role, "value": text}
            elif style == "openai" and draw(st.booleans()):
                parts = [{"type": "text", "text": text.replace("<image>", "").replace("<video>", "")}]
                if draw(st.booleans()):
                    parts.insert(0, {"type": draw(st.sampled_from(["image", "image_url", "video"])),
                                     "image": draw(IMG), "video": draw(VID)})
                m = {"role": role, "content": parts}
            else:
                m = {"role": role, "content": text}
            if role is None:
                m.pop("role", None)
                m.pop("from", None)
            out.append(m)
    if draw(st.integers(0, 9)) == 0 and out:
        out.append(dict(out[0]))  # odd length
    return out


@st.composite
def records(draw):
    fmt = draw(st.sampled_from(F.FORMATS))
    style = {"llava": "llava", "openai_content": "openai"}.get(fmt, "sharegpt")
    rec: dict = {"id": draw(st.sampled_from(["r1", "r2", "r3", "", 7, None, "id with space"]))}
    if rec["id"] is None:
        del rec["id"]
    key = "conversations" if fmt == "llava" or draw(st.integers(0, 4)) == 0 else "messages"
    rec[key] = draw(messages(style))
    if draw(st.booleans()):
        rec["data_source"] = draw(st.sampled_from(["src_a", "b(x)", 5]))
    media = draw(st.sampled_from(["none", "image", "images", "frames", "video", "videos", "both", "video_id"]))
    if media == "image":
        rec["image"] = draw(IMG)
    elif media == "images":
        rec["images"] = draw(st.lists(IMG, max_size=2))
    elif media == "frames":
        rec["images"] = draw(st.lists(IMG, min_size=2, max_size=6))
        rec["video"] = "vid1"
    elif media == "video":
        rec["video"] = draw(VID)
    elif media == "videos":
        rec["videos"] = draw(st.lists(VID, max_size=2))
    elif media == "both":
        rec["image"] = draw(IMG)
        rec["video"] = draw(VID)
    elif media == "video_id":
        rec["video_id"] = "v9"
        rec["images"] = draw(st.lists(IMG, max_size=5))
    return fmt, rec


def _general_view(row) -> tuple:
    """What the fast path reports, computed from the general parse."""
    if any(p.items is not None for p in row.pairs):
        return None  # positional: the fast path never handles it
    items = row.items
    if not items:
        kind, raw = "none", []
    else:
        assert len(items) == 1 or all(it.kind == "image" for it in items)
        kind = items[0].kind
        raw = items[0].value if kind == "frames" and isinstance(items[0].value, list) else [it.value for it in items]
    ntok = sum(len(v) for v in row.turn_items.values())
    return (row.row_id, [p.question for p in row.pairs], [p.answer for p in row.pairs], kind, list(raw), ntok)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_fast_path_equals_parse_for_every_format(fr):
    fmt_name, rec = fr
    rf = F.for_row(rec, F.get_format(fmt_name))
    fast = rf.fast(rec)
    if fast is None:
        return
    try:
        row = rf.parse(rec)
    except RowReject as e:  # the fast path accepted a row the general path rejects
        pytest.fail(f"fast path accepted a row that parse rejects ({e.reason}: {e.detail}): {rec}")
    assert not row.cand_rejects
    rid, qs, ans, kind, raw, ntok = fast
    assert _general_view(row) == (rid, qs, ans, kind, list(raw), ntok), rec


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(records(), min_size=1, max_size=25), st.sampled_from(F.FORMATS), st.booleans())
def test_ingest_fast_and_general_paths_agree(tmp_path, monkeypatch, rows, file_fmt, media_root):
    """Whole-ingest check: the same candidates, rejects and stats with the fast path on and off
    (also the builder's part: video keys, confinement, lean columns)."""
    p = tmp_path / "pool.jsonl"
    p.write_bytes(b"".join(orjson.dumps(r) + b"\n" for _, r in rows))
    kw = dict(fmt=file_fmt, probe_media=False, media_root=tmp_path if media_root else None)
    out = []
    for fast in (True, False):
        monkeypatch.setattr(ingest_mod, "_FAST_PATH", fast)
        out.append(ingest_mod.ingest([p], **kw))
    a, b = out
    assert a.candidates.equals(b.candidates)
    assert a.rejects == b.rejects
    assert a.stats == b.stats


def test_fast_path_answers_for_the_common_shapes():
    """The fast path is not vacuous: it handles the shapes of LLaVA-OneVision / LLaVA-Video pools."""
    ov = {"id": "o", "data_source": "s", "images": ["a.jpg"],
          "messages": [{"role": "user", "content": "<image>\nWhat?"}, {"role": "assistant", "content": "A."}]}
    vv = {"id": "v", "video_id": "v", "images": [f"f/{i}.jpg" for i in range(40)],
          "conversations": [{"from": "human", "value": "<image>Q1"}, {"from": "gpt", "value": "A1"},
                            {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]}
    assert F.get_format("llava_ov").fast(ov) == ("o", ["What?"], ["A."], "image", ["a.jpg"], 1)
    got = F.get_format("llava_video").fast(vv)
    assert got[:4] == ("v", ["Q1", "Q2"], ["A1", "A2"], "frames") and len(got[4]) == 40
    assert F.get_format("openai_content").fast(ov) is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.data())
def test_rewrite_fast_view_equals_parse(fr, data):
    """The writer's specialisation (``rewrite_view``) rewrites exactly as the general parse does."""
    from gdo.pool.formats.common import rewrite_row, rewrite_view

    fmt_name, rec = fr
    rf = F.for_row(rec, F.get_format(fmt_name))
    try:
        row = rf.parse(rec)
    except RowReject:
        return
    pairs = [(p.user_msg, p.asst_msg) for p in row.pairs]
    kept = sorted(data.draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True)))
    view = rewrite_view(rec, rf.frame_list, kept)
    if view is None:
        return
    assert orjson.dumps(rewrite_row(rec, view, kept)) == orjson.dumps(rewrite_row(rec, row, kept)), (rec, kept)

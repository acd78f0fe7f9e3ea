"""Regenerate the row-kind part of the bad-input corpus (issue 13 item 7). Run from anywhere:

    python tests/data/bad_inputs/rows/make_rows.py

Writes ``pool.jsonl`` (ShareGPT rows, one kind per line), ``llava.json`` (a LLaVA file holding a
LLaVA-Video frame-list row), ``latin1.jsonl`` (a file that is not UTF-8 at all) and ``manifest.json``
(the expected outcome of every line: ``ok``, a reject reason, or ``blank`` for a trailing blank
line that is not a row). No media files: tests ingest with ``probe_media=False``.
Deterministic: the same bytes every run.
"""

from __future__ import annotations

import json
from pathlib import Path

D = Path(__file__).resolve().parent


def _m(role, text, key="role", val="content"):
    return {key: role, val: text}


def _row(rid, *pairs, **extra):
    msgs = []
    for q, a in pairs:
        msgs += [_m("user", q), _m("assistant", a)]
    r = {"id": rid, "messages": msgs}
    r.update(extra)
    return json.dumps(r, ensure_ascii=False).encode()


def make() -> dict:
    img = {"images": ["img/a.png"]}
    lines: list[tuple[bytes, str]] = [
        (_row("ok1", ("<image>What is shown?", "A square."), **img), "ok"),
        (_row("tok-in-answer", ("<image>What is shown?", "<image> A square."), **img), "media_in_answer"),
        (json.dumps({"id": "role-vs-from", "messages": [
            {"role": "user", "from": "gpt", "content": "<image>Hi?"}, _m("assistant", "Hello.")]}).encode(),
         "role_conflict"),
        (json.dumps({"id": "role-and-from-agree", "images": ["img/a.png"], "messages": [
            {"role": "user", "from": "human", "content": "<image>Hi?"},
            {"role": "assistant", "from": "gpt", "content": "Hello."}]}).encode(), "ok"),
        (_row("", ("<image>Empty id?", "Kept under a content hash."), **img), "ok"),
        (_row("dup", ("<image>First?", "One."), **img), "ok"),
        (_row("dup", ("<image>Second?", "Two."), **img), "ok"),
        (json.dumps({"id": "spellings", "images": ["img/a.png"], "messages": [
            _m("Human", "<image>Q1?"), _m("GPT", "A1."), _m("user", "Q2?"), _m("bot", "A2."),
            _m("USER", "Q3?"), _m("model", "A3."), _m("human", "Q4?"), _m("chatgpt", "A4.")]}).encode(), "ok"),
        (_row("empty-q-first", ("<image>", "A cat."), ("What color?", "Black."), **img), "ok"),
        (_row("empty-q-only", ("<image>  ", "A cat."), **img), "empty_question"),
        (json.dumps({"id": "part-in-answer", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What?"}]},
            {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "img/a.png"}},
                                              {"type": "text", "text": "This."}]}]}).encode(), "media_in_answer"),
        ('{"id": "latin1-line", "messages": [{"role": "user", "content": "caf\u00e9?"}, '
         '{"role": "assistant", "content": "Oui."}]}'.encode("latin-1"), "not_utf8"),
        (b"", "blank_line"),
        (_row("ok-last", ("<image>Last?", "Yes."), **img), "ok"),
        (b"", "blank"),
        (b"  ", "blank"),
    ]
    (D / "pool.jsonl").write_bytes(b"\n".join(l for l, _ in lines) + b"\n")
    llava = [
        {"id": "lv-string-image", "image": "img/a.png",
         "conversations": [_m("human", "<image>\nWhat colour?", "from", "value"), _m("gpt", "Red.", "from", "value")]},
        {"id": "lv-frames", "video": "clip01", "images": [f"frames/clip01/{i:03d}.jpg" for i in range(40)],
         "conversations": [_m("human", "<image>\nWhat happens first?", "from", "value"),
                           _m("gpt", "A ball drops.", "from", "value")]},
    ]
    (D / "llava.json").write_text(json.dumps(llava, indent=1) + "\n")
    (D / "latin1.jsonl").write_bytes(
        '{"id": "l1", "messages": [{"role": "user", "content": "Qu\u2019est-ce? caf\u00e9"}]}\n'.encode("cp1252") * 3)
    return {
        "pool.jsonl": {str(i): r for i, (_, r) in enumerate(lines, 1)},
        "candidate_rejects": {"9": "empty_question"},
        "duplicate_ids": {"dup": [6, 7]},
        "llava.json": {"1": "ok", "2": "ok"},
        "latin1.jsonl": {"file": "not_utf8"},
    }


if __name__ == "__main__":
    manifest = make()
    (D / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print("wrote", D)

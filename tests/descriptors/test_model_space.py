"""The reference model's hidden-state space of goal relevance (issue 15 item 2): ``gdo profile
--model`` stores pooled hidden states of the VDS forward pass in the embedding store, and goal
items with media are embedded by the same model at selection time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _descriptor_helpers import cand, table

pytest.importorskip("torch")
pytest.importorskip("transformers")

LION = "LLaVA-VL__LLaVA-NeXT/playground/demo/examples/lion1_.mp4"
IMG = "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"
IMG2 = "hiyouga__LLaMA-Factory/data/mllm_demo_data/2.jpg"
VID3 = "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4"


def _pool(R: Path) -> pa.Table:
    return table([
        cand("p::lion", kind="video", media=[R / LION], question="What does the lion do?", answer="It walks."),
        cand("p::img1", kind="image", media=[R / IMG], question="Who is in the picture?", answer="Two footballers."),
        cand("p::img2", kind="image", media=[R / IMG2], question="What is shown?", answer="A person."),
        cand("p::vid3", kind="video", media=[R / VID3], question="What's in the video?", answer="A baby playing."),
        cand("p::txt", kind="none", media=[], question="Say hello.", answer="Hello."),
    ])


@pytest.fixture(scope="module")
def profiled(real_data, tiny_model, tmp_path_factory):
    from gdo.descriptors.profile import profile

    out = tmp_path_factory.mktemp("model_space")
    profile(_pool(real_data), out, model=tiny_model, model_frames=4, device="cpu", text_encoder="hashing",
            descriptors=["fields", "embeddings"], shard_sizes={"media": 2, "text": 4, "model": 2})
    return out


def test_profile_stores_pooled_hidden_states(profiled, tiny_model):
    from gdo.descriptors.embedding_store import read_embeddings
    from gdo.descriptors.profile import model_identity

    E = read_embeddings(profiled)
    meta = json.loads((profiled / "embeddings.meta.json").read_text())
    hidden = json.loads((tiny_model / "config.json").read_text())["text_config"]["hidden_size"]
    assert meta["model_dim"] == hidden and meta["model_id"] == model_identity(tiny_model)
    assert meta["model_frames"] == 4 and "answer tokens" in meta["model_pooling"]
    # the model's fingerprint: the pooled state of gdo.models.hf.probe_item, as the scorer gives it
    from gdo.models.hf import get_scorer, probe_item, project_hidden

    sc = get_scorer(tiny_model, device="cpu", batch_size=1, frames=4)
    np.testing.assert_allclose(meta["model_probe"], project_hidden(sc.embed([probe_item()]))[0], atol=1e-5)
    assert E.uids.to_pylist() == ["p::lion", "p::img1", "p::img2", "p::vid3", "p::txt"]
    assert E.model_mask.tolist() == [True, True, True, True, True]  # the text-only row has a state too
    assert np.allclose(np.linalg.norm(E.model, axis=1), 1.0, atol=2e-3)
    # distinct items give distinct states
    S = E.model @ E.model.T
    assert (S[~np.eye(5, dtype=bool)] < 0.9999).all()
    # descriptors.parquet is unchanged by the new column (it only goes to the store)
    assert "model_emb" not in pq.read_table(profiled / "descriptors.parquet").column_names


def test_pooled_state_matches_a_plain_forward(real_data, tiny_model):
    """Independent check: transformers' own output_hidden_states (last layer, after the final
    norm) averaged over the answer tokens + end marker equals what the scorer pools."""
    import torch

    from gdo.media import read_image
    from gdo.models.hf import VLMItem, get_scorer

    sc = get_scorer(tiny_model, device="cpu", batch_size=2, seed=42, frames=4)
    item = VLMItem(question="Who is in the picture?", answer="Two footballers.",
                   images=(read_image(real_data / IMG),))
    other = VLMItem(question="Say hello.", answer="Hello.")
    pooled = sc.embed([item, other])  # batched and right-padded together
    assert pooled.shape == (2, sc.hidden_size) and np.isfinite(pooled).all()

    prompt = sc._template(sc._messages(item, visual=True), generation=True)
    full = prompt + item.answer + sc._answer_suffix
    enc = sc.processor(text=[full], images=list(item.images), return_tensors="pt")
    n_ans = len(sc.tokenizer(full, add_special_tokens=False)["input_ids"]) - \
        len(sc.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        out = sc.model(**enc, output_hidden_states=True, use_cache=False)
    last = out.hidden_states[-1][0]  # (T, H)
    ref = last[-n_ans:].float().mean(0).numpy()
    np.testing.assert_allclose(pooled[0], ref, rtol=1e-4, atol=1e-4)


def test_project_hidden_is_an_orthogonal_projection():
    from gdo.models.hf import project_hidden

    rng = np.random.default_rng(1)
    h = rng.standard_normal((400, 1024)).astype(np.float32)
    z = project_hidden(h, dim=256)
    assert z.shape == (400, 256) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(z, project_hidden(h, dim=256))  # same matrix every call
    # inner products of unit vectors survive within a few / sqrt(256)
    u = h / np.linalg.norm(h, axis=1, keepdims=True)
    d = z @ z.T - u @ u.T
    assert np.abs(d).max() < 0.3 and np.abs(d).mean() < 0.05
    small = rng.standard_normal((3, 64)).astype(np.float32)
    np.testing.assert_allclose(project_hidden(small), small / np.linalg.norm(small, axis=1, keepdims=True), rtol=1e-6)


def _goal_file(tmp: Path, R: Path) -> Path:
    rows = [{"question": "What does the lion do?", "answer": "It walks.", "video": str(R / LION)},
            {"question": "Who is in the picture?", "answer": "Two footballers.", "image": str(R / IMG)},
            {"question": "What is the animal doing?", "answer": "Walking.", "video": str(R / LION)},
            {"question": "Describe the image.", "answer": "People.", "image": str(R / IMG)},
            {"question": "What is in the clip?", "answer": "A big cat.", "video": str(R / LION)}]
    f = tmp / "goal.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_goal_items_embedded_like_the_pool_and_model_space_used(profiled, real_data, tiny_model, tmp_path):
    from gdo.descriptors.embedding_store import read_embeddings
    from gdo.models.hf import embed_rows
    from gdo.selection.select import select

    E = read_embeddings(profiled)
    # a goal item identical to a pool candidate gets the pool's stored state
    z, mask, errs = embed_rows([{"question": "What does the lion do?", "answer": "It walks.", "media_kind": "video",
                                 "media": [str(real_data / LION)]}], tiny_model, frames=4, device="cpu")
    assert mask.tolist() == [True] and errs == [None]
    assert float(z[0] @ E.model[0]) > 0.9999

    cands = pq.read_table(profiled / "candidates.parquet") if (profiled / "candidates.parquet").exists() \
        else _pool(real_data)
    gm = {"path": str(tiny_model), "device": "cpu", "batch_size": 4, "trust_remote_code": False}
    res = select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=[_goal_file(tmp_path, real_data)],
                 embeddings=profiled, goal_model=gm)
    goal = res.report["goal"]
    assert goal["spaces"] == ["text", "visual", "model"] or goal["spaces"] == ["text", "model"]
    sc = res.scores_table()
    rel_m = np.asarray(sc["goal_rel_model"].to_numpy(zero_copy_only=False), float)
    assert np.isfinite(rel_m).all() and len(set(rel_m.tolist())) >= 3
    assert "relevance" in sc.column_names and "goal_rel_text" in sc.column_names
    # independent recomputation of the model space: ECDF of <x, mean(goal) - mean(pool)>
    gz, gmask, _ = embed_rows([{"question": q, "answer": a, "media_kind": k, "media": m} for q, a, k, m in [
        ("What does the lion do?", "It walks.", "video", [str(real_data / LION)]),
        ("Who is in the picture?", "Two footballers.", "image", [str(real_data / IMG)]),
        ("What is the animal doing?", "Walking.", "video", [str(real_data / LION)]),
        ("Describe the image.", "People.", "image", [str(real_data / IMG)]),
        ("What is in the clip?", "A big cat.", "video", [str(real_data / LION)])]], tiny_model, frames=4, device="cpu")
    d = gz[gmask].mean(0) - E.model[E.model_mask].mean(0)
    raw = E.model @ d
    ecdf = np.array([(raw <= r + 1e-6).mean() for r in raw])
    order = {u: i for i, u in enumerate(E.uids.to_pylist())}
    got = np.array([rel_m[i] for i in range(len(rel_m))])
    want = np.array([ecdf[order[u]] for u in sc["uid"].to_pylist()])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_model_space_skipped_with_a_reason(profiled, real_data, tiny_model, tmp_path):
    from gdo.models.tiny import build_tiny_model
    from gdo.selection.select import select

    goal = [_goal_file(tmp_path, real_data)]
    cands = _pool(real_data)
    res = select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=goal, embeddings=profiled)
    assert "model" not in res.report["goal"]["spaces"]
    assert any("no model was given at selection" in n for n in res.report["goal"]["notes"])
    other = tmp_path / "other_tiny"
    build_tiny_model(other, seed=1)
    res = select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=goal, embeddings=profiled,
                 goal_model={"path": str(other), "device": "cpu"})
    assert "model" not in res.report["goal"]["spaces"]
    assert any("does not behave like the one the pool was profiled with" in n for n in res.report["goal"]["notes"])
    # the same weights in another folder under another name: the fingerprint matches, the space is used
    import shutil

    copy = tmp_path / "renamed_copy"
    shutil.copytree(tiny_model, copy)
    res = select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=goal, embeddings=profiled,
                 goal_model={"path": str(copy), "device": "cpu"})
    assert "model" in res.report["goal"]["spaces"], res.report["goal"]["notes"]
    from gdo.goalset import GoalSetError

    empty = tmp_path / "empty_model"
    empty.mkdir()
    with pytest.raises(GoalSetError, match="not a model folder"):
        select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=goal, embeddings=profiled,
               goal_model={"path": str(empty), "device": "cpu"})
    txt = tmp_path / "q.txt"
    txt.write_text("What does the lion do?\nWho is there?\nWhat happens?\nWhy?\nWhere is it?\n")
    res = select(cands, profiled / "descriptors.parquet", preset="target", budget=2, goal_set=[txt], embeddings=profiled,
                 goal_model={"path": str(tiny_model), "device": "cpu"})
    assert any("carry no media" in n for n in res.report["goal"]["notes"])


def test_model_without_output_head_still_scores(real_data, tiny_model):
    """A model exposing no output head gives its losses as before and no model embeddings."""
    from gdo.models.hf import VLMScorer, compute_model_descriptors

    sc = VLMScorer(tiny_model, device="cpu", batch_size=2, frames=4)
    pool = _pool(real_data).slice(1, 2)
    ref = compute_model_descriptors(pool, tiny_model, scorer=sc, descriptors=("vds",))
    sc._head = None
    t = compute_model_descriptors(pool, tiny_model, scorer=sc, descriptors=("vds",))
    assert "model_emb" in ref.column_names and "model_emb" not in t.column_names
    assert t.column("vds").to_pylist() == ref.column("vds").to_pylist()
    assert sc.pooled is None
    with pytest.raises(RuntimeError, match="no output head"):
        sc.embed([{"question": "q", "answer": "a"}])


def test_goal_items_with_bad_media_are_named(profiled, real_data, tiny_model, tmp_path):
    """Unreadable goal media leave the item out of the visual / model space, named by file:line."""
    from gdo.selection.select import select

    rows = [{"question": "What does the lion do?", "answer": "It walks.", "video": str(real_data / LION)},
            {"question": "What happens?", "answer": "Something.", "video": str(tmp_path / "missing.mp4")},
            {"question": "Who is there?", "answer": "People.", "image": str(real_data / IMG)},
            {"question": "Is it a photo?", "answer": "No.", "image": str(real_data / "manifest.json")},
            {"question": "What is in the clip?", "answer": "A big cat.", "video": str(real_data / LION)}]
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = select(_pool(real_data), profiled / "descriptors.parquet", preset="target", budget=2, goal_set=[f],
                 embeddings=profiled, goal_model={"path": str(tiny_model), "device": "cpu"})
    g = res.report["goal"]
    assert g["spaces"] == ["text", "visual", "model"]
    vis = next(n for n in g["notes"] if "left out of the visual space" in n)
    mod = next(n for n in g["notes"] if "could not be embedded by the model" in n)
    for note in (vis, mod):
        assert note.startswith("2 goal item(s)") and "bad.jsonl:2: " in note and "bad.jsonl:4: " in note
    assert [e["origin"] for e in g["visual_goal_errors"]] == ["bad.jsonl:2", "bad.jsonl:4"]


def test_out_that_is_a_file_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from gdo.cli import app

    f = tmp_path / "taken"
    f.write_text("x")
    pool = Path(__file__).resolve().parents[2] / "examples" / "demo_pool" / "llava_video.jsonl"
    r = CliRunner().invoke(app, ["ingest", str(pool), "--out", str(f)])
    assert r.exit_code == 2 and "a file of that name exists" in r.output and "Traceback" not in r.output

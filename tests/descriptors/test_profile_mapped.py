"""Issue 17, driver memory: profile reads candidates.parquet into a memory-mapped Arrow copy and
keeps the text matrix in a memory-mapped file, both under ``out/.gdo/work`` and removed at the
end, with the same outputs as reading into memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _descriptor_helpers import cand, table
from gdo.descriptors import profile as P


def _chunked(rng, sizes):
    """A chunked list<string> column with nulls and empty lists, chunk lengths ``sizes``."""
    chunks = []
    for k, m in enumerate(sizes):
        vals = []
        for i in range(m):
            r = rng.integers(0, 5)
            vals.append(None if r == 0 else [f"c{k}r{i}p{j}" for j in range(r - 1)])
        chunks.append(pa.array(vals, pa.list_(pa.string())))
    return pa.chunked_array(chunks, pa.list_(pa.string()))


@pytest.mark.parametrize("sizes", [[5, 0, 7, 3], [1], [0, 4, 0]])
def test_take_rows_equals_arrow_take(sizes):
    rng = np.random.default_rng(len(sizes))
    col = _chunked(rng, sizes)
    n = len(col)
    whole = col.combine_chunks()  # the reference: Arrow's own take on one array
    cases = [np.arange(n), np.arange(n)[::-1], rng.integers(0, n, 3 * n), np.array([], np.int64),
             np.sort(rng.integers(0, n, n))]
    for idx in cases:
        got = P.take_rows(col, idx)
        assert got.equals(whole.take(pa.array(idx, pa.int64()))), idx
    with pytest.raises(IndexError):
        P.take_rows(col, [n])


def test_read_mapped_same_values_outside_arrows_allocator(tmp_path):
    rows = [cand(f"u{i}", kind="frames" if i % 3 else "image", media=[f"/m/{i}/{j}.jpg" for j in range(i % 7)],
                 question=f"question {i} " * (i % 5), answer=f"answer {i}") for i in range(20000)]
    src = tmp_path / "candidates.parquet"
    pq.write_table(table(rows), src, row_group_size=15000)
    want = pq.read_table(src, columns=list(P._USED))
    before = pa.total_allocated_bytes()
    got = P.read_mapped(src, P._USED, tmp_path / "work")
    held = pa.total_allocated_bytes() - before
    assert got.schema.equals(want.schema, check_metadata=False) and got.num_rows == want.num_rows
    assert got.equals(want)
    assert (tmp_path / "work" / "candidates.arrow").exists()
    # the table's buffers are pages of the mapped file, not allocations of Arrow's memory pool
    assert got.nbytes > 1_000_000 and held < got.nbytes / 20, (held, got.nbytes)


def test_profile_text_matrix_is_mapped_then_removed(tmp_path, monkeypatch):
    rows = [cand(f"t{i}", kind="none", media=[], question=f"Why did thing {i} happen?", answer=f"Because {i}.")
            for i in range(40)]
    seen = {}
    real_take = P.ProfileContext.take_text

    def spy(self, shards):
        real_take(self, shards)
        emb = self._cache["text_emb"]
        seen["type"], seen["file"] = type(emb), Path(emb.filename)
        seen["exists"] = seen["file"].exists()

    monkeypatch.setattr(P.ProfileContext, "take_text", spy)
    src = tmp_path / "in" / "candidates.parquet"
    src.parent.mkdir()
    pq.write_table(table(rows), src)
    out = tmp_path / "out"
    mapped = P.profile(src, out, descriptors=["fields", "embeddings", "cluster"], text_encoder="hashing",
                       shard_sizes={"text": 16})
    assert seen["type"] is np.memmap and seen["exists"] and seen["file"].parent.parent == P.work_dir(out)
    assert not P.work_dir(out).exists()  # scratch removed at the end
    monkeypatch.setattr(P.ProfileContext, "take_text", real_take)
    mem = P.profile(table(rows), tmp_path / "out2", descriptors=["fields", "embeddings", "cluster"],
                    text_encoder="hashing", shard_sizes={"text": 16})
    assert mapped.equals(mem)
    for f in ("descriptors.parquet", "embeddings.parquet", "embeddings.text.f16.npy"):
        assert (out / f).read_bytes() == (tmp_path / "out2" / f).read_bytes(), f


def test_mapped_media_items_and_visual_store_same_bytes(real_data, tmp_path):
    """Real media through a candidates.parquet (mapped: item paths read from the mapped column,
    the store's visual column gathered into a mapped file) and through an in-memory table: the
    same descriptors.parquet, media.parquet and embedding store, byte for byte."""
    from _descriptor_helpers import frames_of

    R = real_data
    clip = R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/3.mp4"
    rows = [cand("v0", kind="video", media=[clip], question="What happens first?", answer="A baby plays."),
            cand("v1", kind="video", media=[clip], question="Is it indoors?", answer="Yes."),
            cand("f0", kind="frames", media=frames_of(R / "open-mmlab__mmaction2/tests/data/imgs"),
                 question="Which sport?", answer="Golf."),
            cand("i0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
                 question="Who are they?", answer="Players."),
            cand("n0", kind="none", media=[], question="Say hi.", answer="Hi.")]
    src = tmp_path / "in" / "candidates.parquet"
    src.parent.mkdir()
    pq.write_table(table([dict(r) for r in rows]), src, row_group_size=2)
    opts = dict(descriptors=["fields", "motion", "embeddings", "cluster", "dedup"], text_encoder="hashing",
                k=2, shard_sizes={"media": 1, "text": 2})
    a = P.profile(src, tmp_path / "mapped", **opts)
    b = P.profile(table([dict(r) for r in rows]), tmp_path / "memory", **opts)
    assert a.equals(b) and a.num_rows == 5
    assert a.column("media_error").null_count == 5  # every item decoded
    for f in ("descriptors.parquet", "media.parquet", "embeddings.parquet", "embeddings.visual.f16.npy"):
        assert (tmp_path / "mapped" / f).read_bytes() == (tmp_path / "memory" / f).read_bytes(), f
    assert not P.work_dir(tmp_path / "mapped").exists()


def _write_in_pieces_with_own_dictionaries(rows, path):
    """candidates.parquet written in two pieces, ``media_kind`` dictionary-encoded with a different
    dictionary in each row group (what other writers produce; gdo's ingest writes plain strings)."""
    import pyarrow.compute as pc

    t = table(rows)
    i = t.schema.get_field_index("media_kind")

    def enc(x):
        return x.set_column(i, "media_kind", pc.dictionary_encode(x.column("media_kind").combine_chunks()))

    a, b = enc(t.slice(0, 2)), enc(t.slice(2))
    assert a.column("media_kind").chunk(0).dictionary != b.column("media_kind").chunk(0).dictionary
    with pq.ParquetWriter(path, a.schema) as w:
        w.write_table(a)
        w.write_table(b)


def test_dictionary_per_row_group_is_read(tmp_path):
    rows = [cand("a", kind="none", media=[], question="Q a?", answer="A."),
            cand("b", kind="none", media=[], question="Q b?", answer="B."),
            cand("c", kind="image", media=["/nope/c.jpg"], question="Q c?", answer="C."),
            cand("d", kind="image", media=["/nope/d.jpg"], question="Q d?", answer="D.")]
    src = tmp_path / "in" / "candidates.parquet"
    src.parent.mkdir()
    _write_in_pieces_with_own_dictionaries([dict(r) for r in rows], src)
    got = P.read_mapped(src, P._USED, tmp_path / "w")
    assert got.column("media_kind").to_pylist() == ["none", "none", "image", "image"]
    assert got.schema.field("media_kind").type == pa.string()
    opts = dict(descriptors=["fields", "embeddings", "cluster"], text_encoder="hashing", k=2)
    a = P.profile(src, tmp_path / "out", **opts)
    b = P.profile(table([dict(r) for r in rows]), tmp_path / "mem", **opts)
    assert a.equals(b)


def test_scratch_removed_after_an_error(tmp_path):
    rows = [cand(f"e{i}", kind="none", media=[], question=f"Q {i}?", answer="A.") for i in range(3)]
    src = tmp_path / "in" / "candidates.parquet"
    src.parent.mkdir()
    pq.write_table(table(rows).drop_columns(["question"]), src)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="question"):
        P.profile(src, out, descriptors=["fields"], text_encoder="hashing")
    assert not P.work_dir(out).exists()


def test_input_inside_the_scratch_folder_is_refused_not_deleted(tmp_path):
    out = tmp_path / "out"
    P.work_dir(out).mkdir(parents=True)
    src = P.work_dir(out) / "candidates.parquet"
    pq.write_table(table([cand("x", kind="none", media=[])]), src)
    with pytest.raises(ValueError, match="scratch"):
        P.profile(src, out, descriptors=["fields"], text_encoder="hashing")
    assert src.exists()


def test_map_shards_equals_concat_tables_chunk_for_chunk(tmp_path):
    """A stage's shards, read one at a time from the shard store into a mapped file, give Arrow's
    own ``concat_tables`` (promoting an older shard that lacks a column), chunk for chunk, with the
    buffers outside Arrow's allocator."""
    from gdo.engine.store import ShardStore

    rng = np.random.default_rng(3)
    store = P._DeferredShardStore(tmp_path / "shards", "media", {"v": 1})
    tables = []
    for s in range(6):
        k = int(rng.integers(0, 4000)) if s != 2 else 0
        t = pa.table({"media_key": pa.array([f"k{s}_{i}" for i in range(k)]),
                      "amm": pa.array(rng.random(k)),
                      "visual": pa.array(list(rng.random((k, 8)).astype(np.float32)), pa.list_(pa.float32())),
                      "model_emb": pa.array([[1.0, 2.0]] * k, pa.list_(pa.float32()))})
        if s == 4:  # written by an earlier gdo, before model_emb existed
            t = t.drop_columns(["model_emb"])
        ShardStore.write(store, f"s{s}", t)
        tables.append(pq.read_table(store._paths(f"s{s}")[0]))
    refs = [store.read(f"s{s}") for s in range(6)]
    want = pa.concat_tables(tables, promote_options="default")
    before = pa.total_allocated_bytes()
    got = P.map_shards(refs, tmp_path / "work" / "stage_media.arrow")
    held = pa.total_allocated_bytes() - before
    assert refs == [None] * 6  # released as read
    assert got.equals(want) and got.schema.equals(want.schema)
    for name in want.column_names:
        assert [len(c) for c in got.column(name).chunks if len(c)] == [len(c) for c in want.column(name).chunks if len(c)]
    assert got.column("model_emb").null_count == len(tables[4]) > 0
    assert got.nbytes > 200_000 and held < got.nbytes / 20, (held, got.nbytes)
    assert P.map_shards([], tmp_path / "work" / "empty.arrow").num_rows == 0


def test_mapped_stage_tables_give_the_in_memory_bytes(real_data, tmp_path, monkeypatch):
    """Real clips, frames and an image: with the media stage's table, the per-item visual
    features and the descriptor columns memory-mapped (profile's default) and with them in
    memory as before (``pa.concat_tables``, ``list_to_np``, the columns as made), every output
    file is the same, byte for byte."""
    from _descriptor_helpers import frames_of

    R = real_data
    clips = sorted((R / "open-mmlab__mmaction2").rglob("*.mp4"))[:3]
    rows = [cand(f"v{i}", kind="video", media=[c], question="What happens?", answer="Something.")
            for i, c in enumerate(clips)]
    rows += [cand("f0", kind="frames", media=frames_of(R / "open-mmlab__mmaction2/tests/data/imgs"),
                  question="Which sport?", answer="Golf."),
             cand("i0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"],
                  question="Who?", answer="Players."),
             cand("n0", kind="none", media=[], question="Say hi.", answer="Hi.")]
    opts = dict(descriptors=["fields", "motion", "embeddings", "cluster", "dedup"], text_encoder="hashing",
                k=2, shard_sizes={"media": 2, "text": 2})
    seen = {}
    real_visual = P.ProfileContext.visual_items.fget

    def spy(self):
        v = real_visual(self)
        seen.setdefault("visual", type(v))
        return v

    real_column = P.ProfileContext.scratch_column

    def spy_column(self, arr):
        got = real_column(self, arr)
        made = self.work / f"col_{self._scratch_files:04d}.arrow"
        seen.setdefault("columns", []).append(made.exists() and got.equals(arr))
        return got

    monkeypatch.setattr(P.ProfileContext, "visual_items", property(spy))
    monkeypatch.setattr(P.ProfileContext, "scratch_column", spy_column)
    a = P.profile(table([dict(r) for r in rows]), tmp_path / "mapped", **opts)
    assert seen["visual"] is np.memmap
    assert len(seen["columns"]) > 20 and all(seen["columns"])  # every descriptor column, mapped

    def in_memory(shards, dest):
        return pa.concat_tables([s.load() if isinstance(s, P._ShardRef) else s for s in shards],
                                promote_options="default")

    monkeypatch.setattr(P, "map_shards", in_memory)
    monkeypatch.setattr(P.ProfileContext, "_rows_matrix", lambda self, name, col, dim: P.list_to_np(col, dim))
    monkeypatch.setattr(P.ProfileContext, "scratch_column", lambda self, arr: arr)
    b = P.profile(table([dict(r) for r in rows]), tmp_path / "memory", **opts)
    assert a.equals(b) and a.num_rows == len(rows) >= 5
    assert a.column("media_error").null_count == len(rows)
    for f in ("descriptors.parquet", "media.parquet", "embeddings.parquet", "embeddings.visual.f16.npy",
              "embeddings.text.f16.npy"):
        assert (tmp_path / "mapped" / f).read_bytes() == (tmp_path / "memory" / f).read_bytes(), f


def _run_script(body: str, tmp_path) -> str:
    """Run ``body`` in a fresh interpreter (plugin registrations stay out of this process)."""
    import subprocess
    import sys
    import textwrap

    tests = Path(__file__).resolve().parents[1]
    script = f"import sys\nsys.path[:0] = [{str(tests)!r}]\n" + textwrap.dedent(body)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1]


def test_plugin_column_given_again_keeps_its_values(tmp_path):
    """A plugin group that gives a built-in column again (amm) and a new one: the later values win,
    as before the descriptor columns were mapped, and no mapped file is rewritten under another."""
    out = _run_script(f'''
        import json, numpy as np, pyarrow as pa, pyarrow.parquet as pq
        import gdo.descriptors.groups
        from gdo.descriptors.registry import Descriptor, register
        from gdo.descriptors.profile import profile
        from _descriptor_helpers import cand, table
        register(Descriptor(name="myplug", columns={{"amm": pa.float64(), "my_score": pa.float64()}}, needs=(),
                            compute=lambda ctx: {{"amm": np.full(ctx.n, 7.0), "my_score": np.arange(ctx.n, dtype=np.float64)}},
                            enabled=lambda ctx: True))
        rows = [cand(f"t{{i}}", kind="none", media=[], question=f"Why {{i}}?", answer=f"Because {{i}}.") for i in range(30)]
        t = profile(table(rows), {str(tmp_path / "o")!r}, text_encoder="hashing", progress=False)
        f = pq.read_table({str(tmp_path / "o" / "descriptors.parquet")!r})
        print(json.dumps({{"amm": t.column("amm").to_pylist(), "file_amm": f.column("amm").to_pylist(),
                          "score": f.column("my_score").to_pylist()}}))
    ''', tmp_path)
    import json

    got = json.loads(out)
    assert got["amm"] == got["file_amm"] == [7.0] * 30
    assert got["score"] == [float(i) for i in range(30)]


def test_plugin_dictionary_media_column_over_several_shards(real_data, tmp_path):
    """A media plugin with a dictionary-typed column: each media shard carries its own dictionary,
    which one Arrow IPC file cannot hold; the stage table is then concatenated in memory."""
    out = _run_script(f'''
        import json, pyarrow as pa, pyarrow.parquet as pq
        from pathlib import Path
        import gdo.descriptors.groups
        from gdo.descriptors.registry import MediaDescriptor, register
        from gdo.descriptors.profile import profile
        from _descriptor_helpers import cand, table
        register(MediaDescriptor(name="label", columns=(("label", pa.dictionary(pa.int32(), pa.string())),),
                                 compute=lambda kind, frames: {{"label": "moving" if kind == "video" else "still"}},
                                 default=lambda: {{"label": None}}))
        R = Path({str(real_data)!r})
        clips = sorted((R / "open-mmlab__mmaction2").rglob("*.mp4"))[:2]
        rows = [cand(f"v{{i}}", kind="video", media=[c]) for i, c in enumerate(clips)]
        rows.append(cand("i0", kind="image", media=[R / "hiyouga__LLaMA-Factory/data/mllm_demo_data/1.jpg"]))
        profile(table(rows), {str(tmp_path / "o")!r}, descriptors=["fields", "motion"], text_encoder="hashing",
                shard_sizes={{"media": 1}}, progress=False)
        print(json.dumps(pq.read_table({str(tmp_path / "o" / "media.parquet")!r}).column("label").to_pylist()))
    ''', tmp_path)
    import json

    assert json.loads(out) == ["moving", "moving", "still"]
    assert not P.work_dir(tmp_path / "o").exists()


def test_map_shards_missing_shard_is_file_not_found(tmp_path):
    from gdo.engine.store import ShardStore

    store = P._DeferredShardStore(tmp_path / "shards", "media", {"v": 1})
    ShardStore.write(store, "s0", pa.table({"a": [1, 2]}))
    ref = store.read("s0")
    for f in store.dir.glob("s0*"):
        if f.suffix != ".parquet":
            f.unlink()  # the completion marker gone: the shard is no longer complete
    with pytest.raises(FileNotFoundError, match="not complete"):
        P.map_shards([ref], tmp_path / "work" / "x.arrow")
    assert not (tmp_path / "work" / "x.arrow.tmp").exists()

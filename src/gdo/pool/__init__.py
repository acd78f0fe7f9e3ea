"""Pool ingestion: row formats (``gdo.pool.formats``: one module per format with detect, parse, the
fast path and rewrite; containers), rows -> candidates, media, ingest orchestration, row writer.

Public entry points: ``gdo.pool.ingest.ingest`` / ``write_ingest`` / ``read_candidates``,
``gdo.pool.media`` (``sample_indices``, ``probe_video``, ``load_frames``, ``FrameCache``,
``resolve_media``) and ``gdo.pool.writer.write_rows``. Submodules are imported lazily by callers so
that ``import gdo.pool`` stays cheap.
"""

"""Pool ingestion: row formats (``gdo.pool.formats``: one module per format with detect, parse, the
fast path and rewrite; containers), rows -> candidates, media, ingest orchestration, row writer.

Public entry points: ``gdo.pool.ingest.ingest`` / ``write_ingest`` / ``read_candidates``,
and ``gdo.pool.writer.write_rows``. Media (resolution, probing, decoding, sampling, the frame cache)
live in :mod:`gdo.media`, below this package. Submodules are imported lazily by callers so
that ``import gdo.pool`` stays cheap.
"""

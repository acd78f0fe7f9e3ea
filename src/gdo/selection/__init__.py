"""Goal-driven selection (GDO_METHOD.md sections 4-7).

Modules: ``goal`` (Goal model, TOML/YAML goal files), ``presets`` (minloss, diverse, temp,
temp_plus), ``descriptors_io`` (our Parquet, the release's merged JSONL, and an adapter for its raw shards onto
gdo.descriptors' cluster and quality code),
``text`` (vectorised word tokens), ``score`` (stratum fields, candidate score), ``paper`` (the
release's random stream, shortlists and baseline order), ``budget`` (auto budget, largest-remainder
quotas), ``baseline`` (Uni-Nx), ``select`` (``select``, pure: the stage layer gdo.stages writes its files), ``report`` (report.json,
schema in docs/REPORT_SCHEMA.md).
"""

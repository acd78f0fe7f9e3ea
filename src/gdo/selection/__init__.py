"""Goal-driven selection (GDO_METHOD.md sections 4-7).

Modules: ``goal`` (Goal model, TOML/YAML goal files), ``presets`` (minloss, diverse, temp,
temp_plus), ``descriptors_io`` (our Parquet, the release's merged JSONL and raw shards),
``text`` (vectorised word tokens), ``kmeans`` (k-means for cluster_rep at k=4096), ``score``
(z-scores, quality, stratum fields, candidate score), ``budget`` (auto budget, largest-remainder
quotas), ``baseline`` (Uni-Nx), ``select`` (``select``, pure: the stage layer gdo.stages writes its files),
``report`` (report.json, schema in docs/REPORT_SCHEMA.md).
"""

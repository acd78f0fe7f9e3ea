"""gdo.descriptors: per-candidate descriptors (GDO_METHOD.md section 3) and stratum fields.

Modules: ``fields`` (stratum fields, lexical TNC), ``motion`` (AMM, frame diversity),
``embeddings`` (text + visual features), ``cluster`` (cluster_rep / cluster_hard),
``dedup`` (perceptual hashes, dup_group) and ``profile`` (the resumable orchestration behind
``gdo profile``). Import the submodule you need; nothing heavy is imported here.
"""

"""Built-in descriptor groups; importing this package registers them (:mod:`gdo.descriptors.registry`).

One module per group. Registration order is column order for new columns and the order media
descriptors run on shared frames. To add a descriptor: write ``groups/<name>.py`` calling
:func:`gdo.descriptors.registry.register`, then add its import below (docs/DESIGN.md).
"""

from gdo.descriptors.groups import base  # noqa: F401  media stage (one decode) + base columns
from gdo.descriptors.groups import motion  # noqa: F401  AMM, frame diversity
from gdo.descriptors.groups import visual  # noqa: F401  weight-free visual feature, CLIP/SigLIP stage
from gdo.descriptors.groups import dedup  # noqa: F401  perceptual hashes, dup groups
from gdo.descriptors.groups import text  # noqa: F401  text embeddings stage
from gdo.descriptors.groups import model  # noqa: F401  VLM descriptors stage + columns
from gdo.descriptors.groups import fields  # noqa: F401  stratum fields, TNC
from gdo.descriptors.groups import cluster  # noqa: F401  cluster_id / rep / hard
from gdo.descriptors.groups import embeddings  # noqa: F401  the embeddings group (embeddings.parquet)

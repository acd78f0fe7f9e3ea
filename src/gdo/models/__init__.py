"""Reference-model descriptors (GDO_METHOD.md 3.1, 3.2, 3.4, 3.5).

* ``gdo.models.hf``: ``VLMScorer`` (batched VDS/PPL losses, self-consistency, temporal judge over
  any local Hugging Face vision-language model) and ``compute_model_descriptors`` (candidates
  table -> model descriptor columns).
* ``gdo.models.tiny``: ``build_tiny_model`` -- a tiny offline Qwen2-VL (``gdo tiny-model DIR``).

Submodules import torch/transformers lazily; importing this package is cheap.
"""

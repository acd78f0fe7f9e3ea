"""The ``embeddings`` group: no descriptors.parquet column; it runs the text stage (and the media
stage for the visual feature) so that profile writes embeddings.parquet (see
:func:`gdo.descriptors.profile.profile`)."""

from __future__ import annotations

from gdo.descriptors.registry import Descriptor, register

register(Descriptor(name="embeddings", columns={}, needs=("text", "media"), compute=lambda ctx: {}))

"""gdo: goal-driven data optimization for multimodal instruction-tuning pools.

The method is described in ``docs/METHOD.md`` (a copy of GDO_METHOD.md); the
data flow is ``pool -> candidates -> descriptors -> score -> select -> export -> report``.
"""

__version__ = "0.1.0"

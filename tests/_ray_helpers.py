"""Ray test scaffolding shared by the engine tests that run fake stages on a Ray the test owns."""

from __future__ import annotations

from contextlib import contextmanager
from types import ModuleType


@contextmanager
def fresh_ray(module: ModuleType):
    """No Ray session before or after the block; ``module`` (the test module holding the fake
    stage's functions) is pickled by value, so Ray workers need not import tests/."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(module)
        if ray.is_initialized():
            ray.shutdown()

"""Deconfound's collector: storage, serving, the app, data in and out, the CLI and benchmarks.

The Python API mirrors the CLI::

    from collector import Collector, Store, init_db
    from collector.jobs.simulate import simulate
    from collector.io.export import export

Layers import one way (checked by import-linter in ``make test``): ``collector`` uses
``models``, which uses ``acquisition``, which builds on ``acquisition.core``.
"""

from acquisition.core.errors import DeconfoundError
from collector.serving.service import Collector, PairView
from collector.store import Store
from collector.store.create import init_db


def __getattr__(name: str) -> object:
    """``SimulatedAnnotatorConfig`` on first use: it imports pandas, which the annotator's page
    (everything that imports ``collector``) does not need."""
    if name == "SimulatedAnnotatorConfig":
        from collector.jobs.simulate import SimulatedAnnotatorConfig

        return SimulatedAnnotatorConfig
    raise AttributeError(f"module 'collector' has no attribute {name!r}")

__all__ = ["Collector", "DeconfoundError", "PairView", "SimulatedAnnotatorConfig", "Store", "init_db"]

"""Deconfound's collector: storage, serving, the app, data in and out, the CLI and benchmarks.

The Python API mirrors the CLI::

    from collector import Collector, Store, init_db
    from collector.serving.simulate import simulate
    from collector.io.export import export

Layers import one way (checked by import-linter in ``make test``): ``collector`` uses
``models``, which uses ``acquisition``, which builds on ``acquisition.core``.
"""

from acquisition.core.errors import DeconfoundError
from collector.serving.service import Collector, PairView
from collector.serving.simulate import SimulatedAnnotatorConfig
from collector.store import Store
from collector.store.create import init_db

__all__ = ["Collector", "DeconfoundError", "PairView", "SimulatedAnnotatorConfig", "Store", "init_db"]

"""Deconfound's collector: storage, serving, annotators, simulation, export and the CLI.

The Python API mirrors the CLI::

    from collector import Store, Collector, init_db
    from collector.simulate import simulate
    from collector.export import export

Names are imported lazily so that ``acquisition`` can import ``collector.errors`` and
``collector.store`` without a circular import. ``simulate`` and ``export`` are imported from
their modules: a package attribute of the same name as a submodule becomes the submodule as
soon as anything imports it.
"""

from importlib import import_module
from typing import Any

_API = {
    "Collector": "collector.serving", "PairView": "collector.serving",
    "DeconfoundError": "collector.errors", "Store": "collector.store",
    "SimulatedAnnotatorConfig": "collector.simulate", "init_db": "collector.setup",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'collector' has no attribute {name!r}")

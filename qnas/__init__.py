"""qnas: noise-aware quantum architecture search on calibrated IBM devices.

    import qnas
    run = qnas.search("configs/quickstart.yaml")   # or qnas.load_run("runs/quickstart")
    run.pareto_front, run.best, run.circuit("best")

The names below load on first use, so `import qnas` (and the `qnas` command) stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "search": "qnas.api",
    "load_run": "qnas.api",
    "make_config": "qnas.api",
    "Run": "qnas.api",
    "Config": "qnas.config",
    "load_config": "qnas.config",
    "register_task": "qnas.registry",
    "register_encoder": "qnas.registry",
    "register_objective": "qnas.registry",
    "register_device": "qnas.registry",
    "classification_task": "qnas.tasks.custom",
    "vqe_task": "qnas.tasks.custom",
    "Task": "qnas.tasks.base",
    "Layer": "qnas.sim",
    "get_task": "qnas.tasks",
    "get_device": "qnas.devices",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qnas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

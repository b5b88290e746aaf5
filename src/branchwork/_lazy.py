"""Modules loaded on first use, for start-up time (a CLI command pays only for what it needs).

`lazy_module("pkg.mod")` returns the module object at once; its code runs when one of its
attributes is first read (`importlib.util.LazyLoader`). The dependency stays visible at the top
of the importing module, and the architecture test reads these names like imports.
A tool, not a layer: any module may use it.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module

"""Modules loaded on first use, for start-up time (a CLI command pays only for what it needs).

`lazy_module("pkg.mod")` returns a stand-in at once; the module is imported (the ordinary way,
once) when one of its attributes is first read, and every read goes to it. The dependency stays
visible at the top of the importing module, and the architecture test reads these names like
imports. A tool, not a layer: any module may use it.

Not `importlib.util.LazyLoader`: it puts a half-made module in `sys.modules`, and on Python
3.11 importing a submodule of such a package (`import branchwork.index._models` before the
first `index.X`) runs the submodule twice: two `SearchHit` classes, two registries.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any


class _Deferred(ModuleType):
    """Stands for a module not imported yet; reading an attribute imports it."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy, pickle and inspect probe these: not a first use
        return getattr(importlib.import_module(self.__name__), attr)


def lazy_module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ImportError(f"no module named {name!r}")
    return _Deferred(name)

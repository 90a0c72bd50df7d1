"""Methods: one file each. Importing this package registers every method module found in it, so the lookup by
name (``get_method``, used by the CLI and the Python API) lives here, above the engine that runs them."""

import importlib
import pkgutil
import sys
import types

from ..engine.method import METHODS, Method
from ..errors import ConfigError

for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")


def get_method(name: str) -> type[Method]:
    """The registered method class called ``name``."""
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]


class _CallablePackage(types.ModuleType):
    """``latentlab.methods()`` (the API's listing) is this package called: Python binds a subpackage to its
    parent's attribute of the same name, so the listing and the package are one object."""

    def __call__(self) -> dict[str, str]:
        """Every registered method: name -> its one-line summary."""
        return {name: METHODS[name].summary for name in sorted(METHODS)}


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["METHODS", "get_method"]

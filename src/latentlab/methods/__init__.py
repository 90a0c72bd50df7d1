"""Methods: one file each. Importing this package registers every method module found in it."""

import importlib
import pkgutil
import sys
import types

from .base import METHODS, EvalResult, Method, get_method, register_method

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")



class _CallablePackage(types.ModuleType):
    """``latentlab.methods()`` (the API's listing) is this package called: Python binds a subpackage to its
    parent's attribute of the same name, so the listing and the package are one object."""

    def __call__(self) -> dict[str, str]:
        """Every registered method: name -> its one-line summary."""
        return {name: METHODS[name].summary for name in sorted(METHODS)}


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["METHODS", "EvalResult", "Method", "get_method", "register_method"]

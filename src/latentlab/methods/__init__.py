"""Methods: one file each. Importing this package registers every method module found in it."""

import importlib
import pkgutil

from .base import METHODS, EvalResult, Method, get_method, register_method

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["METHODS", "EvalResult", "Method", "get_method", "register_method"]

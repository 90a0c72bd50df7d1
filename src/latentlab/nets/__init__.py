"""Networks. Importing this package registers every network module found in it."""

import importlib
import pkgutil

from .registry import NETS, NetEntry, create, list_nets, register

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "registry":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["NETS", "NetEntry", "create", "list_nets", "register"]

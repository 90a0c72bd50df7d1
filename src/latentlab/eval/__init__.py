"""Evaluation: every result records the protocol that produced it.

Importing this package registers every generic protocol defined in its modules.
"""

import importlib
import pkgutil

from .protocols import PROTOCOLS, register_protocol, run_protocol

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "protocols" and not _m.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["PROTOCOLS", "register_protocol", "run_protocol"]

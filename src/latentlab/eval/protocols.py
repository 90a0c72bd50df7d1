"""Generic evaluation protocols that apply to any run, selected by ``latentlab eval --protocol NAME``.

A protocol is ``fn(method) -> EvalResult``. Representation protocols (linear probe, k-NN, retrieval)
use ``method.encoder()``; a method's own ``evaluate(protocol=...)`` handles the rest.
"""

from __future__ import annotations

from typing import Callable

PROTOCOLS: dict[str, Callable] = {}


def register_protocol(name: str):
    def deco(fn):
        if name in PROTOCOLS:
            raise ValueError(f"protocol {name!r} registered twice")
        PROTOCOLS[name] = fn
        return fn
    return deco


def run_protocol(method, protocol: str | None):
    """``protocol`` None -> the method's own evaluation; a registered name -> that protocol."""
    if protocol is None:
        return method.evaluate()
    if protocol in PROTOCOLS:
        return PROTOCOLS[protocol](method)
    return method.evaluate(protocol=protocol)

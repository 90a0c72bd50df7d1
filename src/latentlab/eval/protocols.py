"""Evaluation protocols, selected by ``latentlab eval --protocol NAME`` (``run.evaluate(NAME)``).

A generic protocol is ``fn(method, **options) -> EvalResult`` registered here by name (representation:
``linear``, ``knn``, ``retrieval``; generative: ``fid``, ``kid``, ``prdc``, ``classes``, ``modes``,
``likelihood``). A method declares in ``protocols`` every name it supports, generic ones and those its own
``evaluate(protocol=...)`` takes; any other is refused before anything runs or is written.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ..errors import ConfigError

PROTOCOLS: dict[str, Callable] = {}


def register_protocol(name: str):
    def deco(fn):
        if name in PROTOCOLS:
            raise ValueError(f"protocol {name!r} registered twice")
        PROTOCOLS[name] = fn
        return fn
    return deco


def run_protocol(method, protocol: str | None, **kw):
    """``protocol`` None -> the method's own evaluation; a name the method declares -> that protocol (``kw``: its
    options, e.g. ``layer`` of the representation protocols, ``split`` and ``n`` of the generative ones)."""
    if protocol is None and not kw:
        return method.evaluate()
    supported = tuple(method.protocols)
    if protocol is None or protocol not in supported:
        what = f"no protocol '{protocol}'" if protocol is not None else "options without a protocol"
        raise ConfigError(f"method '{method.name}' has {what} (its protocols: "
                          f"{', '.join(supported) or 'none beyond its default evaluation'})")
    if protocol in PROTOCOLS:
        fn = PROTOCOLS[protocol]
        known = [p for p in inspect.signature(fn).parameters if p != "method"]
        for k in kw:
            if k not in known:
                raise ConfigError(f"protocol '{protocol}' has no option '{k}' (its options: {', '.join(known)})")
        return fn(method, **kw)
    if kw:
        raise ConfigError(f"protocol '{protocol}' of method '{method.name}' takes no options (got {', '.join(kw)})")
    return method.evaluate(protocol=protocol)

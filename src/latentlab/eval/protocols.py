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


def run_protocol(method, protocol: str | None, **kw):
    """``protocol`` None -> the method's own evaluation; a registered name -> that protocol (``kw``: its
    options, e.g. ``layer`` of the representation protocols)."""
    if protocol is None and not kw:
        return method.evaluate()
    own = tuple(getattr(method, "own_protocols", ()))
    if protocol is not None and protocol not in PROTOCOLS and protocol not in own:
        from ..errors import ConfigError
        raise ConfigError(f"method '{method.name}' has no protocol '{protocol}' (its own: "
                          f"{', '.join(own) or 'none beyond its default'}; generic, for a run with an encoder: "
                          f"{', '.join(sorted(PROTOCOLS))})")
    if protocol in PROTOCOLS:
        import inspect
        known = inspect.signature(PROTOCOLS[protocol]).parameters
        for k in kw:
            if k not in known or k == "method":
                from ..errors import ConfigError
                raise ConfigError(f"protocol '{protocol}' has no option '{k}'")
        return PROTOCOLS[protocol](method, **kw)
    if kw:
        from ..errors import ConfigError
        raise ConfigError(f"options {sorted(kw)} need a representation protocol (--protocol linear|knn|retrieval)")
    return method.evaluate(protocol=protocol)

"""Extra ``latentlab`` sub-commands: every module here defines ``register(subparsers)``.

Each handler is set with ``parser.set_defaults(func=handler)``; it takes the argparse namespace,
returns an exit code and raises ``LatentlabError`` for a one-line error (exit code 2).
"""

import importlib
import pkgutil


def register_all(subparsers) -> None:
    for m in sorted((m for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}").register(subparsers)

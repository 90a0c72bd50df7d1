"""latentlab: representation learning and generative models, runnable, measurable and visible.

    import latentlab as ll
    run = ll.train("gan2d", dataset="ring8", steps=2000, out="runs/ring8")
    run.sample(500); run.evaluate(); ll.load("runs/ring8"); ll.methods(); ll.resolve("dcgan", steps=500)

The API (``latentlab.api``) is imported on first use, so ``import latentlab`` stays light.
"""

__version__ = "0.1.0"

_API = ("Run", "featurenet", "load", "load_run", "resolve", "train")
_ERRORS = ("LatentlabError", "ConfigError", "DataError", "NonFiniteLossError")
__all__ = [*_API, *_ERRORS, "methods", "__version__"]


def __getattr__(name: str):
    if name == "methods":                    # the package, callable: ll.methods() lists the methods
        import importlib
        return importlib.import_module(".methods", __name__)
    if name in _API:
        from . import api
        return getattr(api, name)
    if name in _ERRORS:
        from . import errors
        return getattr(errors, name)
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

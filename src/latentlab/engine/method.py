"""The contract every method implements, and the registry it joins (the engine's layer).

A method is one file: a config dataclass with the paper's defaults, networks from ``nets/``, losses
from ``losses/``, and hooks the engine calls:

- ``__init__(cfg)``: build networks (plain ``nn.Module`` attributes) and load data.
- ``configure_optimizers() -> dict[name, Optimizer]`` (and optionally ``configure_schedulers``).
- ``batches(rank, world)``: the training stream, or ``engine.batches.Streams`` of named ones (positions checkpointed).
- ``training_step(batch, step) -> dict[str, float]``: its own updates with ``self.optimize``; ``step`` is the
  number of steps done before this one (``self.step`` too; after the step the engine sets it to steps done).
- ``evaluate(protocol) -> EvalResult``, ``images() -> dict[str, Tensor]``, ``sample(n)`` for generators,
  ``log_prob(x)`` for likelihood models.

The engine owns the cadence: after each ``training_step`` it updates the averages of ``ema()``, steps every
scheduler (``ReduceLROnPlateau`` on the monitored value ``plateau_metric``), and calls each of ``monitors()``
at its interval, logging what they return. ``protocols`` names every evaluation ``latentlab eval`` may run.

Everything that is an ``nn.Module`` attribute, every optimizer and scheduler, and every attribute
named in ``extra_state`` is checkpointed, so resume is exact without per-method code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..config import TrainConfig
from ..errors import ConfigError, NonFiniteLossError
from ..modules import unwrap
from ..nets.global_bn import convert_global_bn
from ..results import EvalResult


class Method:
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    generative: ClassVar[bool] = False
    protocols: ClassVar[tuple[str, ...]] = ()       # every protocol it supports beyond its default evaluate():
                                                    # generic ones (eval.PROTOCOLS) and names its evaluate() takes
    plateau_metric: ClassVar[str | None] = None     # the monitored value a ReduceLROnPlateau scheduler steps on
    trainable: ClassVar[tuple[str, ...]] = ()       # nn.Module attributes wrapped by Fabric (DDP)
    extra_state: ClassVar[tuple[str, ...]] = ()     # tensor attributes checkpointed as-is
    global_bn: bool = True                          # under DDP, BatchNorm statistics span every process

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.fabric = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.step = 0
        self.run_dir: Path | None = None

    # -- hooks to implement ------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def configure_schedulers(self) -> dict[str, Any]:
        return {}

    def batches(self, rank: int, world: int):
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        raise NotImplementedError

    def evaluate(self, protocol: str | None = None) -> EvalResult:
        """Final metrics with their protocol. ``protocol`` selects one where a method has several."""
        return EvalResult({})

    def monitors(self) -> dict[str, tuple[int, Callable[[], dict[str, float]]]]:
        """Measurements the engine makes after a step's updates whenever the steps done are a multiple of
        ``every``: name -> (every, fn); ``fn()`` returns the values to log (every = 0: off)."""
        return {}

    def ema(self) -> dict[str, tuple[str, float]]:
        """Weight averages the engine updates after every step: averaged module -> (trained module, decay), the
        decay a number or a function of the steps done (e.g. ``nets.ema.ramped_decay``)."""
        return {}

    def images(self) -> dict[str, torch.Tensor]:
        """Pictures to log now: name -> (N, C, H, W) grid batch in [0, 1], or (3, H, W) image."""
        return {}

    def on_train_end(self, run_dir: Path) -> dict[str, str]:
        """Write final figures into ``run_dir``; return name -> path."""
        return {}

    def encoder(self) -> nn.Module | None:
        """The network whose ``forward_features(x) -> (B, F)`` is this run's representation, if any.

        Generic protocols (linear probe, k-NN, retrieval) evaluate any run whose method returns one.
        """
        return None

    def sample(self, n: int, **kw) -> torch.Tensor:
        raise ConfigError(f"method '{self.name}' is not generative: nothing to sample")

    def save_samples(self, n: int, path: Path, **kw) -> Path:
        """Write ``n`` samples as a picture (image grid by default; methods on points override)."""
        from ..viz.grid import save_image
        x = self.sample(n, **kw)                                  # (n, C, H, W) in [0, 1]
        return save_image(x, path)

    # -- engine plumbing (shared) ------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.fabric.device if self.fabric is not None else torch.device("cpu")

    def modules(self) -> dict[str, nn.Module]:
        return {k: v for k, v in vars(self).items() if isinstance(v, nn.Module)}

    def setup(self, fabric) -> None:
        """Move networks to the device, wrap trainable ones (DDP), build optimizers."""
        self.fabric = fabric
        for name, mod in self.modules().items():
            if fabric.world_size > 1 and self.global_bn:   # statistics over the global batch, as 1 process
                mod = convert_global_bn(mod)
            if self.cfg.channels_last and any(isinstance(m, nn.Conv2d) for m in mod.modules()):
                mod = mod.to(memory_format=torch.channels_last)
            if name in self.trainable:
                mod = fabric.setup_module(mod)
                if self.cfg.compile:
                    mod = torch.compile(mod, dynamic=False)
            elif any(True for _ in mod.parameters()):      # teachers, EMA generators: same precision as
                mod = _with_precision(mod, fabric)          # the trained networks, but no DDP
            else:                                           # parameter-free (augmentation pipelines)
                mod = mod.to(fabric.device)
            setattr(self, name, mod)
        if getattr(fabric, "evaluation_only", False):   # engine.run.LocalFabric: weights only, no updates
            self.optimizers, self.schedulers = {}, {}     # (an optimizer's first use imports torch._dynamo: ~2 s)
        else:
            self.optimizers = {k: fabric.setup_optimizers(o) for k, o in self.configure_optimizers().items()}
            self.schedulers = self.configure_schedulers()
        double = self.cfg.precision == "64-true"          # the step runs in float64 (engine/loop.py)
        for name in self.extra_state:
            t = getattr(self, name)
            setattr(self, name, t.to(fabric.device, torch.float64 if double and t.is_floating_point() else t.dtype))

    def differentiable(self, mod: nn.Module, method: str = "forward"):
        """``mod`` (its ``method``) as a function for ``torch.autograd.grad`` (WGAN-GP's penalty, the
        multi-task gradients). Fabric's wrapper refuses any gradient through its outputs that does not come
        from ``fabric.backward`` under mixed precision; this calls the module under the wrapper (DDP included
        for ``forward``) in the precision's context itself."""
        inner = getattr(mod, "_forward_module", mod)
        inner = inner if method == "forward" else getattr(unwrap(inner), method)
        strategy = getattr(self.fabric, "strategy", None)
        precision = strategy.precision if strategy is not None else None

        def f(*args, **kw):
            if precision is None:
                return inner(*args, **kw)
            with precision.forward_context():
                return inner(*precision.convert_input(args), **precision.convert_input(kw))
        return f

    def prepare_images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float in [0, 1] on the device, channels_last if configured."""
        x = x.to(self.device, non_blocking=True).float().div_(255)
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def prepare_eval(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> the encoder's test-time input (every generic protocol uses this); methods
        whose test view differs from ``prepare_images`` (e.g. AlexNet's centre crop) override it."""
        return self.prepare_images(x)

    def optimize(self, name: str | tuple[str, ...], loss: torch.Tensor, clip: float | None = None,
                 edit_grads: Callable[[], None] | None = None) -> None:
        """One update of optimizer ``name`` (a tuple: each of them, from one backward pass, as MCD's step A);
        refuses a non-finite loss before touching weights. ``clip``: the gradients' global norm is clipped to
        it first; ``edit_grads()`` runs after the backward pass, before clipping and the step (PCGrad replaces
        the shared weights' gradients there)."""
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(f"non-finite loss '{name}' = {loss.item()} at step {self.step}")
        opts = [self.optimizers[n] for n in ((name,) if isinstance(name, str) else name)]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        if edit_grads is not None:
            edit_grads()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p for opt in opts for g in opt.param_groups for p in g["params"]], clip)
        for opt in opts:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: unwrap(m).state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "extra": {k: getattr(self, k) for k in self.extra_state},
        }

    def load_state_dict(self, state: dict[str, Any], weights_only: bool = False) -> None:
        mods = self.modules()
        for k, sd in state["modules"].items():
            if k not in mods:
                raise ConfigError(f"checkpoint has network '{k}' that method '{self.name}' does not build")
            unwrap(mods[k]).load_state_dict(sd)
        for k, v in state.get("extra", {}).items():
            cur = getattr(self, k)
            setattr(self, k, v.to(cur.device) if isinstance(v, torch.Tensor) else v)
        if weights_only:
            return
        for k, sd in state["optimizers"].items():
            self.optimizers[k].load_state_dict(sd)
        for k, sd in state["schedulers"].items():
            self.schedulers[k].load_state_dict(sd)


def linear_decay(optimizers: dict[str, torch.optim.Optimizer], steps: int, start: int = 0) -> dict[str, Any]:
    """One LambdaLR per optimizer: the learning rate stays at its value for ``start`` steps, then falls linearly
    to 0 at ``steps`` (Pix2Pix's and CycleGAN's 100 + 100 epochs: ``start = steps // 2``)."""
    f = lambda t: 1.0 if t < start else max(0.0, 1 - (t - start) / max(1, steps - start))  # noqa: E731
    return {k: torch.optim.lr_scheduler.LambdaLR(o, f) for k, o in optimizers.items()}


def linear_warmup(optimizers: dict[str, torch.optim.Optimizer], steps: int) -> dict[str, Any]:
    """One LambdaLR per optimizer: the learning rate rises linearly over ``steps`` to its value (0: constant)."""
    return {k: torch.optim.lr_scheduler.LambdaLR(o, lambda t: min(1.0, (t + 1) / steps) if steps else 1.0)
            for k, o in optimizers.items()}


def _with_precision(mod: nn.Module, fabric) -> nn.Module:
    """A network that is not trained by gradients (an EMA teacher or generator) set up like the trained
    ones without DDP: converted to the precision's dtype (``64-true``, ``bf16-true``), on the device, and
    its ``forward`` run in the precision's context (autocast for ``*-mixed``), inputs cast to it."""
    if fabric.strategy is None:                      # engine.run.LocalFabric: float32, one process
        return mod.to(fabric.device)
    from lightning.fabric.wrappers import _FabricModule
    precision = fabric.strategy.precision
    mod = precision.convert_module(mod).to(fabric.device)
    return _FabricModule(mod, fabric.strategy, original_module=mod)


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


"""Generative evaluation protocols: any method with ``sample(n, seed=...)`` (and ``log_prob`` for likelihood).

    fid, kid     Frechet / kernel distance of samples to a reference split in the frozen feature network's space
    prdc         improved precision and recall (k = 3), density and coverage (k = 5)
    classes      the frozen classifier's reading of the samples: classes covered, KL to uniform, confident share,
                 and class consistency for conditional models (requested class = predicted class)
    modes        2-D mixtures: modes captured within 3 sigma (VEEGAN/PacGAN); Stacked-MNIST: the 1000 modes
                 read confidently by the per-channel classifier (Unrolled GAN / VEEGAN / PacGAN protocol)
    likelihood   the test images' log-likelihood in nats per image and bits per dimension
    interpolation  smoothness of latent walks: feature-space path length over endpoint distance, largest step's
                 share of the path, and the share of midpoints the classifier reads with confidence

Reference splits: ``val`` (a seeded part of train held out, split seed ``VAL_SPLIT_SEED``; every choice is
made on it), ``train`` (the rest of train) and ``test`` (reported figures only). Samples are drawn from
noise seeded by ``seed`` (default: the run's seed + 1) and quantised to 8 bits like the real images. The
feature network is read, never trained, here (``latentlab featurenet DATASET`` makes it).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..results import EvalResult
from . import gan_metrics as gm
from .protocols import register_protocol

VAL_SPLIT_SEED = 0          # the same held-out part as the feature network's (supervised, seed 0)
CONFIDENT = gm.CONFIDENT
LN2 = math.log(2)


def split_images(method, split: str):
    """The dataset of a reference split: ``test``, or the ``val`` / ``train`` part of the train split (the method's
    ``val_fraction``, split seed ``VAL_SPLIT_SEED``)."""
    from ..data import load_dataset
    if split not in ("val", "train", "test"):
        raise ConfigError(f"reference split '{split}': expected val, train or test")
    c = method.cfg
    ds = load_dataset(c.dataset, "test" if split == "test" else "train", c.data_dir)
    if split != "test":
        tr, va = ds.train_val(getattr(c, "val_fraction", 0.1), VAL_SPLIT_SEED)
        ds = va if split == "val" else tr
    return ds


class Scorer:
    """Frozen-network readings of one method's samples and of the reference splits, cached per method (the
    reference and the network are fixed, so tracking FID during training does not recompute them)."""

    def __init__(self, method):
        from .featurenet import load_featurenet
        c = method.cfg
        self.method, self.dataset = method, c.dataset
        self.fn = load_featurenet(c.dataset).to(method.device)
        self.val_fraction = getattr(c, "val_fraction", 0.1)
        self._refs: dict = {}
        self._feats: dict = {}
        k = self.fn.meta["kwargs"]["num_classes"]
        self.num_classes = k ** 3 if self.fn.per_channel else k

    @classmethod
    def of(cls, method) -> "Scorer":
        """The method's scorer, made on first use (evaluation state: not a module, so never checkpointed)."""
        if "_scorer" not in vars(method):
            method._scorer = cls(method)
        return method._scorer

    def reference(self, split: str, n: int) -> torch.Tensor:
        """The first n images (float in [0, 1]) of the reference split."""
        if split not in self._refs:
            self._refs[split] = split_images(self.method, split).images
        return self._refs[split][:n].float() / 255

    def read(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features (N, F), classes (N,), confidences (N,)) of the frozen classifier, in chunks of 1000."""
        dev = self.method.device
        out = [self.fn.read(x01[i:i + 1000].to(dev)) for i in range(0, len(x01), 1000)]
        return tuple(torch.cat([o[j].cpu() for o in out]) for j in range(3))

    def reference_features(self, split: str, n: int) -> torch.Tensor:
        key = (split, n)
        if key not in self._feats:
            self._feats[key] = self.read(self.reference(split, n))[0]
        return self._feats[key]

    def protocol(self, split: str) -> dict:
        where = {"val": f" ({self.val_fraction:g} of train held out, split seed {VAL_SPLIT_SEED})",
                 "train": " (training part)", "test": " (the test split; never used for a choice)"}[split]
        return {**self.fn.protocol(), "reference_split": split + where}


def quantise(x01: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] to 8 bits and back, as the real images are stored."""
    return (x01.clamp(0, 1) * 255).round() / 255


def draw(method, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples from noise of ``seed``, quantised to 8 bits like the real images, and the requested classes
    of a conditional method (cycled 0, 1, ..., K - 1) or None."""
    x = method.sample(n, seed=seed).float().cpu()
    if x.ndim != 4:
        raise ConfigError(f"method '{method.name}' samples points {tuple(x.shape)}, not images: "
                          f"the image protocols do not apply (its protocols: {', '.join(method.protocols)})")
    y = torch.arange(n) % method.K if getattr(method, "conditional", False) else None
    return quantise(x), y


def _settings(method, n: int | None, seed: int | None) -> tuple[int, int]:
    n = int(n if n is not None else getattr(method.cfg, "eval_samples", 5000))
    if n < 2:
        raise ConfigError(f"option n = {n}: need at least 2 samples")
    return n, int(method.cfg.seed + 1 if seed is None else seed)


def _base(method, scorer: Scorer, split: str, n_real: int, n_fake: int, seed: int) -> dict:
    return {"dataset": method.cfg.dataset, "method": method.name, "step": method.step, **scorer.protocol(split),
            "n_real": n_real, "n_fake": n_fake, "noise_seed": seed, "train_seed": method.cfg.seed,
            "fake_quantised": "8-bit"}


def image_report(method, split: str = "val", n: int | None = None, seed: int | None = None,
                 parts: tuple[str, ...] = ("fid", "kid", "prdc", "classes")) -> EvalResult:
    """The image protocols of ``parts`` on one sample set: one draw, one pass of the frozen network."""
    n, seed = _settings(method, n, seed)
    sc = Scorer.of(method)
    fake, y_req = draw(method, n, seed)
    fr = sc.reference_features(split, n)
    ff, pred, conf = sc.read(fake)
    proto = _base(method, sc, split, len(fr), len(ff), seed)
    m: dict[str, float] = {}
    if "fid" in parts:
        if min(len(fr), len(ff)) < gm.FID_MIN_SAMPLES:
            raise ConfigError(f"fid: {min(len(fr), len(ff))} samples, below {gm.FID_MIN_SAMPLES} FID is strongly "
                              f"biased; use --protocol kid or --option n={gm.FID_MIN_SAMPLES}")
        m["fid"] = gm.fid(fr, ff)
        proto["fid"] = "Frechet distance in float64 (torchmetrics' FrechetInceptionDistance formula), custom features"
    if "kid" in parts:
        m["kid"], m["kid_std"], size = gm.kid(fr, ff, seed=seed)
        proto["kid"] = f"torchmetrics KernelInceptionDistance, 100 subsets of {size}, cubic kernel"
    if "prdc" in parts:
        m.update(gm.manifold_metrics(fr, ff, k_pr=3, k_dc=5))
        proto["precision_recall"], proto["density_coverage"] = "Kynkaanniemi et al. 2019, k=3", "Naeem et al. 2020, k=5"
    if "classes" in parts:
        m.update(gm.class_histogram(pred, sc.num_classes))
        m["confident_fraction"] = float((conf >= CONFIDENT).double().mean())
        proto["class_stats"] = "frozen classifier's predicted class of each fake; KL(hist || uniform), nats"
        proto["confident_fraction"] = f"share of fakes whose predicted class has softmax probability >= {CONFIDENT}"
        if y_req is not None:
            m["class_consistency"] = float((pred == y_req).double().mean())
            proto["class_consistency"] = "classifier accuracy on samples of the requested (cycled) class"
    return EvalResult(m, proto)


def fid_or_kid(method, n: int, split: str = "val", seed: int | None = None) -> tuple[str, float]:
    """FID with at least ``gm.FID_MIN_SAMPLES`` samples, else KID (the training-time tracking score)."""
    part = "fid" if n >= gm.FID_MIN_SAMPLES else "kid"
    return part, image_report(method, split, n, seed, parts=(part,)).metrics[part]


def _image_protocol(part: str):
    def protocol(method, split: str = "val", n: int | None = None, seed: int | None = None) -> EvalResult:
        return image_report(method, split, n, seed, parts=(part,))
    protocol.__name__ = protocol.__qualname__ = part
    protocol.__doc__ = f"The ``{part}`` part of ``image_report``: n samples of noise ``seed`` against ``split``."
    return protocol


for _part in ("fid", "kid", "prdc", "classes"):      # one protocol per part of the image report
    register_protocol(_part)(_image_protocol(_part))


@register_protocol("modes")
def modes(method, n: int | None = None, seed: int | None = None) -> EvalResult:
    """2-D mixtures (a method with ``dist.modes``): modes within 3 sigma; Stacked-MNIST: confident modes."""
    from .modes import mode_coverage
    dist = getattr(method, "dist", None)
    if dist is not None and hasattr(dist, "modes") and dist.modes.shape[1] == 2:
        n = int(n if n is not None else getattr(method.cfg, "eval_samples", 5000))
        s = method.sample(n, seed=method.cfg.seed + 1 if seed is None else seed).float().cpu()
        res = mode_coverage(s, dist.modes, dist.sigma)
        return EvalResult(res, {**res.pop("protocol"), "dataset": method.cfg.dataset, "step": method.step})
    if method.cfg.dataset != "stacked_mnist":
        raise ConfigError(f"modes: dataset '{method.cfg.dataset}' has no known modes (a 2-D mixture of gan2d, "
                          f"or stacked_mnist)")
    n = int(n if n is not None else getattr(method.cfg, "mode_samples", 26000))
    seed = method.cfg.seed + 2 if seed is None else seed
    sc = Scorer.of(method)
    fake, _ = draw(method, n, seed)
    _, pred, conf = sc.read(fake)
    sure = conf >= CONFIDENT                      # junk that the classifier cannot read is no mode
    hist = gm.class_histogram(pred[sure], 1000) if sure.any() else {"classes_covered": 0, "class_kl": float("inf")}
    m = {"modes": hist["classes_covered"], "kl_modes": hist["class_kl"],
         "modes_all_samples": gm.class_histogram(pred, 1000)["classes_covered"],
         "mode_confident_fraction": float(sure.double().mean())}
    proto = {**_base(method, sc, "val", 0, n, seed),
             "modes": (f"{n} samples, each channel classified by the MNIST feature net; a sample counts only if "
                       f"each of its 3 digits is read with probability >= {CONFIDENT}; modes hit of 1000, KL(hist "
                       "of those || uniform) (Unrolled GAN/VEEGAN/PacGAN protocol); modes_all_samples counts every "
                       "sample")}
    return EvalResult(m, proto)


@register_protocol("likelihood")
@torch.no_grad()
def likelihood(method, split: str = "test", n: int | None = None, seed: int = 0,
               batch_size: int = 500, k: int | None = None) -> EvalResult:
    """Mean log-likelihood of the first ``n`` images of ``split`` (default: all), in nats per image and in bits
    per dimension, ``bpd = -log p(x) / (D ln 2)`` over the D = C H W values of the 8-bit image.

    ``method.log_prob(x, generator)`` takes uint8 images (B, C, H, W) and returns (B,) log-probabilities in nats
    of the discrete 8-bit images (or a lower bound, e.g. an ELBO); a continuous density is turned into one by
    its method with uniform dequantisation (``dequantize``). ``method.likelihood_protocol(k)`` says how. ``k``:
    the samples of an estimate (a VAE's importance samples, a diffusion model's timesteps per image), passed
    to ``log_prob`` when given; a method whose likelihood is exact refuses it."""
    if not hasattr(method, "log_prob"):
        raise ConfigError(f"likelihood: method '{method.name}' has no log_prob")
    c = method.cfg
    ds = split_images(method, split)
    x = ds.images[:n] if n else ds.images
    g = torch.Generator().manual_seed(seed)
    kw = {} if k is None else {"k": int(k)}
    proto_k = method.likelihood_protocol(**kw)                     # refuses a k it cannot use, before any work
    lp = torch.cat([method.log_prob(x[i:i + batch_size], g, **kw).double().cpu()
                    for i in range(0, len(x), batch_size)])
    d = x[0].numel()
    nats = float(lp.mean())
    m = {"nll_nats": -nats, "bits_per_dim": -nats / (d * LN2),
         "bits_per_dim_se": float(lp.std() / math.sqrt(len(lp)) / (d * LN2)) if len(lp) > 1 else 0.0}
    proto = {"dataset": c.dataset, "method": method.name, "step": method.step, "split": split, "n": len(x),
             "dims": d, "bits_per_dim": "-mean log p(x) / (D ln 2), D = C*H*W of the 8-bit image; se over images",
             "noise_seed": seed, **proto_k}
    return EvalResult(m, proto)


def latent_walk(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str) -> torch.Tensor:
    """Points from a to b (each (P, ...)) at t = 0, 1/(steps-1), ..., 1 -> (P, steps, ...): ``lerp``, or
    ``slerp`` (Shoemake 1985; White 2016), which keeps the norm of Gaussian latents typical."""
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).view(1, steps, *([1] * (a.ndim - 1)))
    a, b = a[:, None], b[:, None]
    if mode == "lerp":
        return (1 - t) * a + t * b
    if mode != "slerp":
        raise ConfigError(f"latent walk '{mode}': expected lerp or slerp")
    dims = tuple(range(2, a.ndim))
    norm = lambda v: torch.linalg.vector_norm(v, dim=dims, keepdim=True)
    cos = (a * b).sum(dims, keepdim=True) / (norm(a) * norm(b))
    omega = cos.clamp(-1 + 1e-7, 1 - 1e-7).acos()
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@register_protocol("interpolation")
@torch.no_grad()
def interpolation(method, pairs: int = 200, steps: int = 17, seed: int | None = None) -> EvalResult:
    """How well behaved the latent space is along ``method.interpolate(pairs, steps, seed)``: walks between pairs
    of latents drawn from the prior (the method states lerp or slerp), decoded, quantised to 8 bits, read by
    the frozen feature network f. Per walk x_0 .. x_{S-1}:

        path_length_ratio   sum_s |f(x_{s+1}) - f(x_s)| / |f(x_{S-1}) - f(x_0)|  (1: a straight feature path;
                            a walk through junk or other classes is longer); median over walks
        max_step_share      max_s |f(x_{s+1}) - f(x_s)| / sum_s |...|  (1/(S-1) at uniform speed, 1: one jump)
        midpoint_confident  share of midpoints (t = 1/2) whose class the classifier reads with p >= CONFIDENT,
                            beside the same share for the endpoints (samples) as its reference"""
    if steps < 3 or steps % 2 == 0:
        raise ConfigError(f"interpolation: steps = {steps}: need an odd number >= 3 (a midpoint at t = 1/2)")
    if not hasattr(method, "interpolate"):
        raise ConfigError(f"interpolation: method '{method.name}' has no latent to interpolate")
    seed = int(method.cfg.seed + 3 if seed is None else seed)
    walk, how = method.interpolate(int(pairs), int(steps), seed)             # (P, S, C, H, W) in [0, 1]
    x = (walk.float().cpu().clamp(0, 1) * 255).round() / 255
    sc = Scorer.of(method)
    f, _, conf = sc.read(x.flatten(0, 1))
    f, conf = f.view(len(x), steps, -1), conf.view(len(x), steps)
    seg = (f[:, 1:] - f[:, :-1]).norm(dim=-1)                                # (P, S-1)
    length, end = seg.sum(1), (f[:, -1] - f[:, 0]).norm(dim=-1)
    ratio = length / end.clamp_min(1e-12)
    m = {"path_length_ratio": float(ratio.median()), "path_length_ratio_mean": float(ratio.mean()),
         "max_step_share": float((seg.max(1).values / length.clamp_min(1e-12)).mean()),
         "midpoint_confident": float((conf[:, steps // 2] >= CONFIDENT).double().mean()),
         "endpoint_confident": float((conf[:, [0, -1]] >= CONFIDENT).double().mean())}
    proto = {"dataset": method.cfg.dataset, "method": method.name, "step": method.step, **sc.fn.protocol(),
             "walks": f"{len(x)} walks of {steps} points between prior draws (noise seed {seed}): {how}",
             "path_length_ratio": "feature-space path length / endpoint distance, median over walks",
             "max_step_share": "largest step / path length, mean over walks (uniform speed: 1/(steps-1))",
             "midpoint_confident": f"share of t = 1/2 images read with softmax probability >= {CONFIDENT}"}
    return EvalResult(m, proto)


def dequantize(x_uint8: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """Uniform dequantisation (Theis et al. 2016): y = (x + u) / 256, u ~ U[0, 1)^D, and the per-image term
    -D log 256 that turns a density on [0, 1]^D into a lower bound on the 8-bit image's log-probability:
    ``log P(x) >= E_u[log p(y)] - D log 256``."""
    u = torch.rand(x_uint8.shape, generator=generator)
    return (x_uint8.double() + u.double()) / 256, -x_uint8[0].numel() * math.log(256)

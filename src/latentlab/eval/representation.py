"""Generic representation protocols: weighted k-NN (DINO) and the linear probe, for any run with an encoder.

Features come from ``method.encoder().forward_features`` (``layer="features"``, the representation the
DINO table probes), from its last convolutional maps (``layer="maps"``: ``forward_maps`` average-pooled
to at most ``MAPS_DIM`` values, the conv-layer probe of the pretext-task papers, e.g. Gidaris et al. 2018,
Goyal et al. 2019) or from any module by its ``named_modules`` name (flattened), in eval mode on
non-augmented uint8 images, cached per run directory, layer and checkpoint step
(``<layer>_<dataset>_<part>_<step>.pt``: ``features_...``, ``maps_...``).
Splits: ``train`` = train minus a seeded validation split (``split_train_val``), ``val`` = that split,
``test`` = the test split.

- k-NN: Wu et al. 2018 / Caron et al. 2021 (DINO, Sec. 4 and App.): cosine similarity of L2-normalised
  features, the k = 20 nearest train features vote with weight exp(sim / T), T = 0.07.
- Linear probe: multinomial logistic regression on frozen, standardised features, full-batch L-BFGS for
  a fixed number of iterations; the weight decay is chosen on the validation split, then the probe is
  refit on train and its *last* iterate is reported on test (no selection on test).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..fileio import atomic_open
from ..modules import unwrap
from ..results import EvalResult
from .protocols import register_protocol

KNN_K, KNN_T = 20, 0.07
PROBE_WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2)
PROBE_ITERS = 100
MAPS_DIM = 4096


def get_encoder(method) -> torch.nn.Module:
    """The plain network behind a run's representation (``method.encoder()``), or a clear error."""
    enc = method.encoder()
    if enc is None:
        raise LatentlabError(f"method '{method.name}' has no encoder (encoder() returns None): "
                             "nothing to inspect")
    return unwrap(enc)


@torch.no_grad()
def descriptors(method, images: torch.Tensor, layer: str | None = None, batch_size: int = 500) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, F) float CPU descriptors of a run's encoder on its eval inputs:
    ``forward_features`` (the penultimate layer) by default, else ``extract``'s ``layer`` (``maps`` or any
    ``named_modules`` name, flattened)."""
    return extract(get_encoder(method), images, method.prepare_eval, batch_size, layer=layer or "features")


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, C*H*W) float in [0, 1]: the pixel-space descriptor."""
    return images.flatten(1).float() / 255


def pooled_maps(maps: torch.Tensor, max_dim: int = MAPS_DIM) -> torch.Tensor:
    """(B, C, h, w) conv maps -> (B, C * p * p), average-pooled to the largest p <= h with C p^2 <= max_dim."""
    c, h = maps.shape[1], maps.shape[2]
    p = max(1, min(h, int((max_dim / c) ** 0.5)))
    return F.adaptive_avg_pool2d(maps, p).flatten(1)


@torch.no_grad()
def extract(encoder, images: torch.Tensor, prepare, batch_size: int = 1000, layer: str = "features") -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, F) float features on the CPU, encoder in eval mode (restored after).

    ``layer``: ``features`` (``forward_features``), ``maps`` (``forward_maps`` pooled by ``pooled_maps``)
    or the ``named_modules`` name of any module, whose output is flattened (the one extractor of the
    probes, the retrieval protocol and the inspection commands). Images of another dataset are matched
    to the encoder's channels and input size.
    """
    enc = unwrap(encoder)
    grabbed: list = []
    hook = None
    if layer == "maps":
        if not hasattr(enc, "forward_maps"):
            raise LatentlabError(f"encoder {type(enc).__name__} has no forward_maps: only layer=features")
        fwd = lambda x: pooled_maps(enc.forward_maps(x))                  # noqa: E731
    elif layer == "features":
        fwd = enc.forward_features
    else:
        hook = find_module(enc, layer).register_forward_hook(lambda m, i, o: grabbed.append(o))
        fwd = lambda x: _run_to(enc, x, grabbed)                          # noqa: E731
    was = enc.training
    enc.eval()
    c_in, size = getattr(enc, "in_chans", None), getattr(enc, "img_size", None)
    # the plain module is called (no Fabric wrapper to cast inputs): float64 under 64-true, bf16 under bf16-true
    dtype = next((p.dtype for p in enc.parameters() if p.is_floating_point()), None)
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = prepare(images[i:i + batch_size])
            if c_in is not None and x.shape[1] != c_in:      # another dataset: match the encoder's channels
                x = x.mean(1, keepdim=True) if c_in == 1 else x.expand(-1, c_in, -1, -1)
            if size is not None and x.shape[-1] != size:     # ... and its input size
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            grabbed.clear()
            out.append(fwd(x if dtype is None else x.to(dtype)).flatten(1).float().cpu())
    finally:
        if hook is not None:
            hook.remove()
        enc.train(was)
    return torch.cat(out) if out else torch.empty(0)


def find_module(model: torch.nn.Module, layer: str) -> torch.nn.Module:
    mods = dict(model.named_modules())
    if layer not in mods or layer == "":
        names = [n for n in mods if n]
        raise LatentlabError(f"layer '{layer}' not found; layers: features, maps, {', '.join(names)}")
    return mods[layer]


def _run_to(enc: torch.nn.Module, x: torch.Tensor, grabbed: list) -> torch.Tensor:
    """The hooked module's output: run ``forward_features`` (enough for most layers), the full forward
    only if the hook did not fire (a classifier-head layer)."""
    if hasattr(enc, "forward_features"):
        enc.forward_features(x)
    if not grabbed:
        enc(x)
    return grabbed[0]


def knn_predict(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, num_classes: int,
                k: int = KNN_K, temperature: float = KNN_T, chunk: int = 1000) -> torch.Tensor:
    """Weighted k-NN labels (N_test,) from cosine similarity to the train features."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, T={temperature}")
    tr = F.normalize(train_f.float(), dim=1)
    k = min(k, len(tr))
    preds = []
    for i in range(0, len(test_f), chunk):
        sim = F.normalize(test_f[i:i + chunk].float(), dim=1) @ tr.t()          # (n, N_train)
        top, idx = sim.topk(k, dim=1)                                            # (n, k)
        votes = torch.zeros(len(sim), num_classes, dtype=sim.dtype)
        votes.scatter_add_(1, train_y[idx], (top / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def fit_linear(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
               iters: int = PROBE_ITERS) -> torch.nn.Linear:
    """Logistic regression by full-batch L-BFGS (fixed iterations, deterministic)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], num_classes, device=x.device)
    torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), y) + weight_decay * lin.weight.pow(2).sum() / 2
        loss.backward()
        return loss
    with torch.enable_grad():
        opt.step(closure)
    return lin


class _one_thread:
    """L-BFGS on (N, 128) features is many tiny ops: one thread is 10-60x faster than two busy ones."""

    def __enter__(self):
        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.n)


def linear_probe(train: tuple, val: tuple, test: tuple, num_classes: int,
                 weight_decays=PROBE_WEIGHT_DECAYS, iters: int = PROBE_ITERS,
                 device: torch.device | str | None = None) -> dict:
    """Pick the weight decay on val, refit on train, report the last iterate on test.

    ``device``: where L-BFGS runs (default: where the features are); ``linear`` passes the run's device,
    so a CUDA run is probed on its GPU rather than on one CPU thread."""
    weight_decays = check_weight_decays(weight_decays)
    if device is not None:
        train, val, test = (tuple(t.to(device) for t in part) for part in (train, val, test))
    if train[0].device.type != "cpu":
        return _linear_probe(train, val, test, num_classes, weight_decays, iters)
    with _one_thread():
        return _linear_probe(train, val, test, num_classes, weight_decays, iters)


def check_weight_decays(weight_decays) -> tuple:
    """The probe's grid as a tuple of floats; a clear error for an empty grid or a negative or non-finite value."""
    from ..errors import ConfigError
    try:
        grid = tuple(float(w) for w in weight_decays)
    except (TypeError, ValueError):
        raise ConfigError(f"weight decays must be numbers, got {weight_decays!r}") from None
    bad = [w for w in grid if not (math.isfinite(w) and w >= 0)]
    if not grid or bad:
        raise ConfigError(f"weight decays must be a non-empty list of finite values >= 0, got {list(grid)}")
    return grid


def grid_edge(grid, chosen: float) -> str | None:
    """'largest' / 'smallest' when the chosen value is at the end of a grid of 2 or more values: the best value
    may lie beyond it, so the grid should be widened (the probe's result records this)."""
    if len(set(grid)) < 2:
        return None
    return "largest" if chosen == max(grid) else "smallest" if chosen == min(grid) else None


def _linear_probe(train, val, test, num_classes, weight_decays, iters) -> dict:
    (xtr, ytr), (xva, yva), (xte, yte) = train, val, test
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xva, xte = (xtr - mu) / sd, (xva - mu) / sd, (xte - mu) / sd
    acc = lambda lin, x, y: (lin(x).argmax(1) == y).float().mean().item()
    scores = {}
    for wd in weight_decays:
        lin = fit_linear(xtr, ytr, num_classes, wd, iters)
        with torch.no_grad():
            scores[wd] = acc(lin, xva, yva) if len(xva) else 0.0
    best = max(weight_decays, key=lambda w: (scores[w], w))   # ties: stronger regularisation
    lin = fit_linear(xtr, ytr, num_classes, best, iters)
    with torch.no_grad():
        return {"test": acc(lin, xte, yte), "val": scores[best], "train": acc(lin, xtr, ytr),
                "weight_decay": best, "weight_decay_at_grid_edge": grid_edge(weight_decays, best),
                "val_scores": {str(k): v for k, v in scores.items()}}


# -- features of a run ------------------------------------------------------------------------------
_DATA: dict = {}


def _load(name: str, split: str, data_dir):
    """load_dataset, memoised for the process (protocols and benchmarks evaluate many runs)."""
    from ..data import load_dataset
    key = (name, split, str(data_dir))
    if key not in _DATA:
        if len(_DATA) >= 8:
            _DATA.clear()
        _DATA[key] = load_dataset(name, split, data_dir)
    return _DATA[key]


def _splits(method, dataset: str | None, max_train: int | None, max_val: int | None = None):
    from ..data import split_train_val
    cfg = method.cfg
    name = dataset or cfg.dataset
    full = _load(name, "train", cfg.data_dir)
    tr, va = split_train_val(len(full), getattr(cfg, "val_fraction", 0.1) or 0.1, cfg.seed)
    if max_train is not None:
        tr = tr[:max_train]
    if max_val is not None:
        va = va[:max_val]
    return name, {"train": full.subset(tr), "val": full.subset(va),
                  "test": _load(name, "test", cfg.data_dir)}


def _read_feature_cache(path: Path, n: int):
    """(features, labels) from a feature cache, or None for an unreadable one (zero bytes, truncated, another
    shape): a cache miss, said on stderr, after which the features are computed again and the file replaced."""
    try:
        d = torch.load(path, weights_only=True)
        f, y = d["features"], d["labels"]
        if not (isinstance(f, torch.Tensor) and isinstance(y, torch.Tensor) and f.dim() == 2 and len(f) == len(y) == n):
            raise ValueError("unexpected content")
        return f, y
    except Exception as e:                                       # noqa: BLE001 - any unreadable cache is a miss
        print(f"note: {path}: unreadable feature cache ({type(e).__name__}); computing the features again",
              file=sys.stderr, flush=True)
        return None


def run_features(method, dataset: str | None = None, max_train: int | None = None, cache: bool = True,
                 max_val: int | None = None, layer: str = "features"):
    """{"train"|"val"|"test": (features (N, F), labels (N,))} for the run's encoder, cached in its run dir."""
    enc = method.encoder()
    if enc is None:
        raise LatentlabError(f"method '{method.name}' has no encoder: the linear and k-NN protocols need one")
    name, sets = _splits(method, dataset, max_train, max_val)
    out = {}
    for part, ds in sets.items():
        limit = {"train": max_train, "val": max_val}.get(part)
        tag = f"{part}{limit}" if limit is not None else part
        path = Path(method.run_dir) / f"{layer}_{Path(name).name}_{tag}_{method.step}.pt" \
            if (cache and method.run_dir is not None) else None
        if path is not None and path.is_file():
            d = _read_feature_cache(path, len(ds))
            if d is not None:
                out[part] = d
                continue
        f = extract(enc, ds.images, method.prepare_eval, layer=layer)
        out[part] = (f, ds.labels.clone())
        if path is not None:
            with atomic_open(path) as fh:
                torch.save({"features": f, "labels": ds.labels.clone()}, fh)
    return name, sets["train"].num_classes, out


def _protocol(method, name, feats, layer="features", **kw) -> dict:
    cfg = method.cfg
    layer = {"features": "forward_features", "maps": f"forward_maps, average-pooled to <= {MAPS_DIM} values"}.get(
        layer, f"module '{layer}' output, flattened")
    return {"dataset": name, "encoder": type(unwrap(method.encoder())).__name__, "layer": layer,
            "feature_dim": int(feats["train"][0].shape[1]), "step": method.step, "seed": cfg.seed,
            "train_split": f"train minus validation ({len(feats['train'][1])} images)",
            "val_split": f"{getattr(cfg, 'val_fraction', 0.1) or 0.1:g} of train, seed {cfg.seed} "
                         f"({len(feats['val'][1])} images)",
            "test_split": f"test ({len(feats['test'][1])} images)", "augmentation": "none", **kw}


@register_protocol("knn")
def knn(method, dataset: str | None = None, k: int = KNN_K, temperature: float = KNN_T,
        max_train: int | None = None, max_val: int | None = None, layer: str = "features") -> EvalResult:
    """Weighted k-NN accuracy on test (and val) with the train features as the bank."""
    name, nc, f = run_features(method, dataset, max_train, max_val=max_val, layer=layer)
    acc = {}
    for part in ("val", "test"):
        if len(f[part][1]):
            pred = knn_predict(*f["train"], f[part][0], nc, k, temperature)
            acc[part] = (pred == f[part][1]).float().mean().item()
    return EvalResult({"knn_test_accuracy": acc["test"], **({"knn_val_accuracy": acc["val"]} if "val" in acc else {})},
                      _protocol(method, name, f, layer, protocol="knn", k=k, temperature=temperature,
                                similarity="cosine on L2-normalised features, votes exp(sim/T)"))


@register_protocol("linear")
def linear(method, dataset: str | None = None, max_train: int | None = None, max_val: int | None = None,
           weight_decays=PROBE_WEIGHT_DECAYS, iters: int = PROBE_ITERS, layer: str = "features") -> EvalResult:
    """Linear probe accuracy on test (last iterate), weight decay chosen on val."""
    weight_decays = check_weight_decays(weight_decays)          # before the features are extracted
    name, nc, f = run_features(method, dataset, max_train, max_val=max_val, layer=layer)
    device = next((p.device for p in unwrap(method.encoder()).parameters()), torch.device("cpu"))  # the run's
    r = linear_probe(f["train"], f["val"], f["test"], nc, weight_decays, iters, device=device)
    return EvalResult({"linear_test_accuracy": r["test"], "linear_val_accuracy": r["val"],
                       "linear_train_accuracy": r["train"]},
                      _protocol(method, name, f, layer, protocol="linear", classifier="logistic regression, "
                                f"standardised features, full-batch L-BFGS {iters} iterations",
                                weight_decay_grid=list(weight_decays),
                                weight_decay=r["weight_decay"], weight_decay_at_grid_edge=r["weight_decay_at_grid_edge"],
                                probe_device=str(device),
                                val_scores=r["val_scores"], selection="weight decay on val; last iterate on test"))

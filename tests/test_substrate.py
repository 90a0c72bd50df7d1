"""The substrate the next methods build on: layers, named-field data and named streams, paired data, the
generative protocols, engine-owned cadence, one meaning of ``step`` and ``init_from``."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import latentlab as ll
from latentlab.cli import main
from latentlab.config import TrainConfig, param, resolve_config
from latentlab.data import load_dataset
from latentlab.engine import Method, open_run, train
from latentlab.engine.batches import ShuffledBatches, Streams, stream_seed
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.errors import ConfigError
from latentlab.eval import run_protocol
from latentlab.results import EvalResult

from conftest import needs

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "latentlab"


# -- layers --------------------------------------------------------------------------------------
# what each folder may import (README "Layout"): a layer imports only itself and the ones below it
LAYERS = [("config", "errors", "fileio", "results", "modules", "distributed"), ("data", "nets", "losses"),
          ("eval",), ("viz",), ("engine",), ("methods",), ("cli", "api", "commands", "__init__", "__main__")]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _imports(path: Path) -> set[str]:
    """The latentlab top-level modules/packages a file imports (absolute or relative), at any depth."""
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(SRC).parts
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[:-node.level]) if node.level <= len(pkg) - 1 else []
                mod = (node.module or "").split(".") if node.module else []
                parts = base + mod
                if not parts:                    # from .. import x  (x is a top-level module)
                    out.update(a.name for a in node.names)
                    continue
                out.add(parts[0])
            elif node.module and node.module.startswith("latentlab."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("latentlab."))
    return out


def test_no_layer_imports_a_higher_one():
    bad = []
    for path in SRC.rglob("*.py"):
        layer = path.relative_to(SRC).parts[0].removesuffix(".py")
        for dep in _imports(path):
            dep = dep.removesuffix(".py")
            if dep in RANK and RANK[dep] > RANK[layer]:
                bad.append(f"{path.relative_to(SRC)} imports {dep}")
    assert not bad, bad


def test_importing_the_engine_imports_no_method():
    code = ("import latentlab.engine, sys; "
            "print(sorted(m for m in sys.modules if m.startswith('latentlab.methods.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- toy methods: two named streams, and paired images ---------------------------------------------
@dataclass
class TwoStreamConfig(TrainConfig):
    dataset: str = param("digits", help="labelled source")
    target: str = param("digits", help="unlabelled target (its first target_size images)")
    target_size: int = param(100, ge=1, help="target images")
    batch_size: int = param(32, ge=1)
    lr: float = param(1e-2, gt=0)


class TwoStream(Method):
    """Source classification plus matching the target's mean logits: two streams of different lengths, so
    their epochs and positions differ at every checkpoint."""
    name = "toy_two_stream"
    Config = TwoStreamConfig
    trainable = ("net",)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.src = load_dataset(cfg.dataset, "train", cfg.data_dir)
        self.tgt = load_dataset(cfg.target, "test", cfg.data_dir).subset(range(cfg.target_size))
        self.net = nn.Linear(self.src.images[0].numel(), self.src.num_classes)

    def configure_optimizers(self):
        return {"net": torch.optim.SGD(self.net.parameters(), lr=self.cfg.lr, momentum=0.9)}

    def batches(self, rank, world):
        c = self.cfg
        return Streams({"source": ShuffledBatches({"x": self.src.images, "y": self.src.labels}, c.batch_size,
                                                  stream_seed(c.seed, "source"), rank, world),
                        "target": ShuffledBatches({"x": self.tgt.images}, c.batch_size,
                                                  stream_seed(c.seed, "target"), rank, world)})

    def training_step(self, batch, step):
        xs = self.prepare_images(batch["source"]["x"]).flatten(1)
        xt = self.prepare_images(batch["target"]["x"]).flatten(1)
        ls, lt = self.net(xs), self.net(xt)
        loss = F.cross_entropy(ls, batch["source"]["y"]) + (ls.mean(0) - lt.mean(0)).pow(2).sum()
        self.optimize("net", loss)
        return {"loss": loss.item()}


@dataclass
class PairedConfig(TrainConfig):
    dataset: str = param("mnist_m_colourise", help="a paired dataset (image -> target_image)")
    max_train: int = param(256, ge=1)
    batch_size: int = param(32, ge=1)
    lr: float = param(1e-2, gt=0)


class PairedToy(Method):
    """A 1x1 convolution from the grey input to the colour target, L1 loss: the paired-data path."""
    name = "toy_paired"
    Config = PairedConfig
    trainable = ("net",)

    def __init__(self, cfg):
        super().__init__(cfg)
        ds = load_dataset(cfg.dataset, "train", cfg.data_dir).subset(range(cfg.max_train))
        self.data = ds
        self.net = nn.Conv2d(ds.images.shape[1], ds.fields["target_image"].shape[1], 1)

    def configure_optimizers(self):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)}

    def batches(self, rank, world):
        return ShuffledBatches({"x": self.data.images, "t": self.data.fields["target_image"]}, self.cfg.batch_size,
                               self.cfg.seed, rank, world)

    def training_step(self, batch, step):
        loss = (self.net(self.prepare_images(batch["x"])) - self.prepare_images(batch["t"])).abs().mean()
        self.optimize("net", loss)
        return {"l1": loss.item()}


def _cfg(cls, **kw):
    return resolve_config(cls.Config, cls.name, None, {k: str(v) for k, v in kw.items()})


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path / "weights.safetensors"))


@pytest.mark.parametrize("cls", [TwoStream, pytest.param(PairedToy, marks=needs("mnist_m"))])
def test_toy_methods_resume_exactly(tmp_path, cls):
    common = dict(log_every=1, ckpt_every=0, image_every=0, eval_at_end=False)
    straight = train(cls, _cfg(cls, steps=11, **common), out=tmp_path / "a", verbose=False)
    train(cls, _cfg(cls, steps=4, **common), out=tmp_path / "b", verbose=False)
    resumed = train(cls, _cfg(cls, steps=11, **common), resume=tmp_path / "b", verbose=False)
    assert straight.steps == 11 and resumed.steps == 7
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["data"]
    sb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["data"]
    assert sa == sb
    if cls is TwoStream:        # its own position per stream: 11 batches of 32 = 3 epochs of 100 + 2 batches
        assert sa == {"source": {"epoch": 0, "pos": 11 * 32}, "target": {"epoch": 3, "pos": 64}}


def test_streams_have_their_own_seeded_order():
    a = ShuffledBatches({"x": torch.arange(50)}, 10, stream_seed(0, "source"))
    b = ShuffledBatches({"x": torch.arange(50)}, 10, stream_seed(0, "target"))
    s = Streams({"source": a, "target": b})
    first = next(s)
    assert not torch.equal(first["source"]["x"], first["target"]["x"])
    state = s.state_dict()
    again = Streams({"source": ShuffledBatches({"x": torch.arange(50)}, 10, stream_seed(0, "source")),
                     "target": ShuffledBatches({"x": torch.arange(50)}, 10, stream_seed(0, "target"))})
    again.load_state_dict(state)
    n1, n2 = next(s), next(again)
    assert all(torch.equal(n1[k]["x"], n2[k]["x"]) for k in n1)
    with pytest.raises(ConfigError, match="saved streams"):
        again.load_state_dict({"source": state["source"]})


def test_engine_trains_an_instance_as_built(tmp_path):
    m = TwoStream(_cfg(TwoStream, steps=3, image_every=0, eval_at_end=False))
    res = train(m, out=tmp_path / "r", verbose=False)
    assert res.steps == 3 and m.step == 3


# -- named fields and paired data -------------------------------------------------------------------
def test_dataset_fields_and_refusals():
    from latentlab.data.datasets import ImageDataset
    x = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    ds = ImageDataset("toy", "train", {"image": x, "angle": torch.arange(4.0)})
    assert ds.subset([1, 3]).fields["angle"].tolist() == [1.0, 3.0]
    with pytest.raises(ll.DataError, match="no 'label' field"):
        ds.labels
    with pytest.raises(ValueError, match="rows"):
        ImageDataset("toy", "train", {"image": x, "angle": torch.arange(3.0)})


def test_paired_pair_is_the_luma_of_its_target():
    from latentlab.data.paired import grey
    rgb = np.zeros((1, 3, 1, 2), np.uint8)
    rgb[0, :, 0, 0] = (255, 0, 0)                 # red: 0.299 * 255 = 76.2
    rgb[0, :, 0, 1] = (10, 200, 30)               # 0.299*10 + 0.587*200 + 0.114*30 = 123.81
    assert grey(rgb)[0, 0, 0].tolist() == [76, 124]


@needs("mnist_m")
def test_paired_dataset_and_lazy_reading_match_the_eager_one():
    ds = load_dataset("mnist_m_colourise", "test")
    assert set(ds.fields) == {"image", "target_image", "label"} and ds.images.shape[1:] == (1, 32, 32)
    from latentlab.data.paired import grey
    assert torch.equal(ds.images[:5], torch.from_numpy(grey(ds.fields["target_image"][:5].numpy())))
    eager, lazy = load_dataset("mnist_m", "test"), load_dataset("mnist_m", "test", lazy=True)
    from latentlab.data.datasets import MappedArray
    assert isinstance(lazy.images, MappedArray)
    idx = torch.tensor([7, 3, 9000, 0])
    assert torch.equal(lazy.images[idx], eager.images[idx])
    sa = ShuffledBatches({"x": eager.images}, 64, 0)
    sb = ShuffledBatches({"x": lazy.images}, 64, 0)
    assert torch.equal(next(sa)["x"], next(sb)["x"])


@needs("mnist")
def test_stacked_mnist_is_a_registry_entry_with_its_loader():
    from latentlab.data import DATASETS
    assert DATASETS["stacked_mnist"].load is not None
    ds = load_dataset("stacked_mnist", "test")
    assert ds.images.shape == (10_000, 3, 28, 28) and int(ds.labels.max()) < 1000


# -- protocols -------------------------------------------------------------------------------------
class UniformPixels(Method):
    """Every 8-bit value equally likely, independently: log P(x) = -D log 256, exactly 8 bits per dimension."""
    name = "toy_uniform"
    protocols = ("likelihood",)

    def log_prob(self, x, generator=None):
        return torch.full((len(x),), -x[0].numel() * math.log(256), dtype=torch.float64)

    def likelihood_protocol(self):
        return {"dequantisation": "none: a discrete model of the 8-bit values"}


class UniformDensity(UniformPixels):
    """The uniform density on [0, 1]^D, dequantised: log p(y) = 0, so the bound is again -D log 256."""

    def log_prob(self, x, generator=None):
        from latentlab.eval.generative import dequantize
        y, correction = dequantize(x, generator)
        assert ((y >= 0) & (y < 1)).all()
        return torch.zeros(len(x), dtype=torch.float64) + correction

    def likelihood_protocol(self):
        return {"dequantisation": "uniform (Theis et al. 2016)"}


@pytest.mark.parametrize("cls", [UniformPixels, UniformDensity])
def test_likelihood_protocol_in_bits_per_dim(cls):
    m = cls(TrainConfig(dataset="digits"))
    res = run_protocol(m, "likelihood", n=50)
    assert res.metrics["bits_per_dim"] == pytest.approx(8.0, abs=1e-12)
    assert res.metrics["nll_nats"] == pytest.approx(64 * math.log(256))
    assert res.protocol["dims"] == 64 and "dequantisation" in res.protocol
    with pytest.raises(ConfigError, match="no option 'bogus'"):
        run_protocol(m, "likelihood", bogus=1)


def test_a_generic_protocol_the_method_does_not_declare_is_refused(tmp_path, capsys):
    run = ll.train("gan2d", out=tmp_path / "r", dataset="ring8", steps=3, image_every=0, eval_at_end=False,
                   verbose=False)
    before = sorted(p.name for p in run.run_dir.iterdir())
    for proto in ("fid", "linear", "likelihood"):
        assert main(["eval", str(run.run_dir), "--protocol", proto]) == 2
        assert f"has no protocol '{proto}'" in capsys.readouterr().err
    assert sorted(p.name for p in run.run_dir.iterdir()) == before
    res = run.evaluate("modes", save=False)
    assert 0 <= res.metrics["modes"] <= 8 and "threshold_sigmas" in res.protocol


@needs("mnist")
def test_image_protocol_without_a_feature_network_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "empty-cache"))
    run = ll.train("dcgan", out=tmp_path / "g", dataset="mnist", max_train=64, batch_size=16, steps=1,
                   image_every=0, eval_at_end=False, verbose=False, ngf=8, ndf=8, num_fixed=8)
    with pytest.raises(ll.DataError, match="latentlab featurenet mnist"):
        run.evaluate("kid", save=False)
    assert not (tmp_path / "g" / "eval_kid.json").exists()


# -- one meaning of step; the engine's cadence ---------------------------------------------------------
def test_step_is_steps_done_in_logs_eval_and_checkpoints(tmp_path):
    run = ll.train("supervised", out=tmp_path / "s", dataset="digits", steps=6, log_every=3, image_every=0,
                   verbose=False)
    ev = json.loads((run.run_dir / "eval.json").read_text())
    assert ev["step"] == 6 and ev["protocol"]["step"] == 6
    assert load_checkpoint(run.run_dir / "checkpoints" / "last.ckpt")["step"] == 6
    assert [r["step"] for r in run.log() if "loss" in r] == [3, 6]
    assert ll.load(run.run_dir).step == 6
    assert main(["eval", str(run.run_dir)]) == 0
    assert json.loads((run.run_dir / "eval.json").read_text())["step"] == 6


def test_monitors_run_at_their_interval_with_steps_done(tmp_path):
    calls = []

    class Monitored(TwoStream):
        def monitors(self):
            return {"probe": (3, lambda: calls.append(self.step) or {"probe": float(self.step)}),
                    "off": (0, lambda: pytest.fail("an interval of 0 is off"))}

    train(Monitored, _cfg(Monitored, steps=7, log_every=1, image_every=0, eval_at_end=False), out=tmp_path / "m",
          verbose=False)
    assert calls == [3, 6]
    rows = [json.loads(l) for l in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines()]
    assert [r["probe"] for r in rows if "probe" in r] == [3.0, 6.0]


# -- init_from ----------------------------------------------------------------------------------------
def test_init_from_loads_weights_records_them_and_refuses_a_shape_mismatch(tmp_path, capsys):
    src = ll.train("supervised", out=tmp_path / "src", dataset="digits", steps=2, image_every=0,
                   eval_at_end=False, verbose=False, width=8)
    w_src = _weights(src.run_dir)
    new = ll.train("supervised", out=tmp_path / "ft", dataset="digits", steps=1, lr=1e-12, image_every=0,
                   eval_at_end=False, verbose=False, width=8, init_from=f"{src.run_dir}:model")
    rec = json.loads((new.run_dir / "init_from.json").read_text())
    assert rec["source_step"] == 2 and rec["loaded"]["model"] == len([k for k in w_src if k.startswith("model.")])
    w_new = _weights(new.run_dir)
    for k in w_src:                                   # one step at lr 1e-12 moves nothing measurable
        assert torch.allclose(w_src[k].float(), w_new[k].float(), atol=1e-6), k
    # a wider network: refused by name with both shapes, one line, exit 2, nothing written
    out = tmp_path / "bad"
    assert main(["train", "supervised", "--out", str(out), "dataset=digits", "steps=1", "width=16",
                 f"init_from={src.run_dir}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shape" in err[0] and "init_from" in err[0]
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(ll.ConfigError, match="no network 'nope'"):
        ll.train("supervised", out=tmp_path / "bad2", dataset="digits", steps=1, verbose=False,
                 init_from=f"{src.run_dir}:nope")

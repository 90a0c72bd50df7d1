"""Image-to-image translation: U-Net and PatchGAN shapes, the edge pairs, the translation metrics, pix2pix's
losses and exact resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab import nets
from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.losses import discriminator_loss_minimax
from latentlab.methods import get_method
from latentlab.nets.translation import patch_layers, receptive_field

from conftest import needs
from helpers import assert_same_weights, weights


def _cfg(method, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("cin,cout", [(1, 3), (3, 3), (1, 1)])
def test_unet_keeps_the_image_size_and_its_depth_reaches_1x1(size, cin, cout):
    G = nets.create("unet_generator", in_channels=cin, out_channels=cout, img_size=size, ngf=4)
    x = torch.randn(2, cin, size, size)
    y = G(x)
    assert y.shape == (2, cout, size, size) and y.abs().max() <= 1
    assert G.depth == {28: 5, 32: 5, 64: 6}[size]                      # 28 is padded to 32
    h = x if size != 28 else torch.nn.functional.pad(x, (2, 2, 2, 2))
    for d in G.down:
        h = d(h)
    assert h.shape[-2:] == (1, 1)
    drops = [m for m in G.up.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 3                                              # the first three decoder layers


def test_unet_skips_carry_the_input_past_the_bottleneck():
    """With the innermost (1x1) layer cut, the output still depends on the input: only the skips can carry it."""
    torch.manual_seed(0)
    G = nets.create("unet_generator", in_channels=1, out_channels=1, img_size=32, ngf=4, dropout=0).eval()
    with torch.no_grad():
        for p in G.down[-1].parameters():
            p.zero_()                                                  # the bottleneck now ignores the input
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    G(x)[0, 0, 10, 10].backward()
    g = x.grad[0, 0].abs()
    assert g[8:13, 8:13].sum() > 1e-3


@pytest.mark.parametrize("size", [28, 32, 64, 256])
def test_patchgan_receptive_field_scaled_to_the_image(size):
    n = patch_layers(size)
    assert [receptive_field(k) for k in (1, 2, 3)] == [16, 34, 70]
    assert n == (3 if size == 256 else 1)
    D = nets.create("patch_discriminator", in_channels=4, ndf=4, n_layers=n)
    out = D(torch.randn(2, 4, size, size))
    assert out.shape[:2] == (2, 1) and out.shape[-1] == out.shape[-2] > 1      # a map of patch logits
    # the receptive field measured: a pixel change reaches output cells within receptive_field(n) of it
    x = torch.zeros(1, 4, size, size, requires_grad=True)
    D.eval()
    D(x)[0, 0, 0, 0].backward()
    touched = (x.grad.abs().sum((0, 1)) > 0).nonzero()
    assert touched[:, 0].max() + 1 <= receptive_field(n)


def test_edge_pairs_on_a_hand_made_square():
    from latentlab.data.paired import edges
    x = np.zeros((2, 1, 8, 8), np.uint8)
    x[0, 0, 2:6, 2:6] = 255                                            # a filled 4x4 square
    e = edges(x)[:, 0] // 255
    assert e.dtype == np.uint8 and e.shape == (2, 8, 8)
    assert e[0, 3:5, 3:5].sum() == 0                                   # flat inside: no edge
    assert e[0, 0].sum() == 0 and e[0, :, 0].sum() == 0                # flat outside, two pixels away
    assert e[0, 1:7, 1:7].sum() - e[0, 3:5, 3:5].sum() == 32           # the square's border, both sides of it
    assert e[1].sum() == 0                                             # blank image: no edges
    rgb = np.repeat(x, 3, 1)
    assert np.array_equal(edges(rgb), edges(x))                        # colour: edges of its luma


@needs("mnist")
def test_mnist_edges_dataset_pairs_each_image_with_its_edges():
    from latentlab.data import load_dataset
    from latentlab.data.paired import edges
    ds = load_dataset("mnist_edges", "test")
    assert set(ds.fields) == {"image", "target_image", "label"}
    plain = load_dataset("mnist", "test")
    assert torch.equal(ds.fields["target_image"][:4], plain.images[:4])
    assert torch.equal(ds.images[:4], torch.from_numpy(edges(plain.images[:4].numpy())))
    assert set(ds.images[:100].unique().tolist()) == {0, 255}


def test_pixel_metrics_against_hand_computed_values():
    from latentlab.eval.translation import pixel_metrics
    t = torch.zeros(2, 1, 16, 16)
    f = t.clone()
    f[0] += 0.1                                                        # image 0: MSE 0.01 -> 20 dB
    f[1, :, :8] = 0.5                                                  # image 1: MSE 0.125 -> 9.03 dB
    m = pixel_metrics(f, t)
    assert m["l1"] == pytest.approx((0.1 + 0.25) / 2)
    assert m["psnr"] == pytest.approx((20 + 10 * math.log10(8)) / 2, abs=1e-6)
    same = pixel_metrics(torch.rand(2, 3, 16, 16).clamp(0.1), torch.ones(2, 3, 16, 16) * 0.5)
    assert same["ssim"] < 0.5
    ident = torch.rand(2, 3, 16, 16)
    assert pixel_metrics(ident, ident)["ssim"] == pytest.approx(1.0)


TINY = dict(max_train=128, batch_size=8, ngf=4, ndf=4, eval_samples=32, log_every=1, image_every=2)


@needs("mnist_m")
def test_pix2pix_losses_are_the_papers():
    """D's loss is half the cGAN discriminator loss on (input, target) vs (input, G(input)); G's is the
    non-saturating term plus lambda times the L1 distance."""
    from latentlab.engine import make_fabric
    m = get_method("pix2pix")(_cfg("pix2pix", steps=1, **TINY))
    m.setup(make_fabric(m.cfg))
    seen = {}
    m.optimize = lambda name, loss: seen.__setitem__(name, float(loss.detach()))
    x, t = m.pair(next(m.batches(0, 1)))
    torch.manual_seed(1)
    d_loss, fake = m.discriminator_step(x, t)
    with torch.no_grad():
        want = 0.5 * discriminator_loss_minimax(m.D(torch.cat([x, t], 1)), m.D(torch.cat([x, fake], 1)))
    assert seen["D"] == pytest.approx(float(want), rel=1e-5)
    gan, l1 = m.generator_step(x, t, fake)
    assert float(l1) == pytest.approx(float((fake - t).abs().mean()), rel=1e-5)
    assert seen["G"] == pytest.approx(float(gan) + 100 * float(l1), rel=1e-5)


@needs("mnist_m")
def test_pix2pix_learning_rate_is_constant_then_linear(tmp_path):
    from latentlab.engine import make_fabric
    m = get_method("pix2pix")(_cfg("pix2pix", steps=10, **TINY))
    m.setup(make_fabric(m.cfg))
    lrs = []
    for _ in range(10):
        lrs.append(m.optimizers["G"].param_groups[0]["lr"])
        m.optimizers["G"].step(), m.schedulers["G"].step()
    assert lrs[:6] == [2e-4] * 6 and lrs[6] == pytest.approx(2e-4 * 4 / 5) and lrs[9] == pytest.approx(2e-4 / 5)


@needs("mnist_m")
def test_pix2pix_resume_is_exact(tmp_path):
    train(get_method("pix2pix"), _cfg("pix2pix", steps=4, **TINY, eval_at_end=False), out=tmp_path / "a",
          verbose=False)
    train(get_method("pix2pix"), _cfg("pix2pix", steps=2, **TINY, eval_at_end=False), out=tmp_path / "b",
          verbose=False)
    train(get_method("pix2pix"), _cfg("pix2pix", steps=4, **TINY, eval_at_end=False), resume=tmp_path / "b",
          verbose=False)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["method"]
    assert set(ca["optimizers"]) == {"D", "G"} and set(ca["schedulers"]) == {"D", "G"}


@needs("mnist_m")
def test_pix2pix_end_to_end_with_its_metrics_and_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    assert main(["featurenet", "mnist_m", "--steps", "20", "--quiet"]) == 0
    out = tmp_path / "run"
    assert main(["train", "pix2pix", *[f"{k}={v}" for k, v in TINY.items()], "steps=3", "--out", str(out)]) == 0
    import json
    ev = json.loads((out / "eval.json").read_text())
    m = ev["metrics"]
    for k in ("l1", "psnr", "ssim", "copy_l1", "copy_psnr", "kid", "label_accuracy", "real_accuracy"):
        assert k in m and math.isfinite(m[k]), k
    assert 0 <= m["label_accuracy"] <= 1 and m["copy_l1"] > 0
    assert (out / "translations.png").is_file()


@needs("mnist")
def test_pix2pix_refuses_an_unpaired_dataset(capsys):
    assert main(["train", "pix2pix", "dataset=mnist", "steps=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset" in err[0] and "paired" in err[0]

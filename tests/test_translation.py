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
    assert float(l1.detach()) == pytest.approx(float((fake - t).abs().mean()), rel=1e-5)
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
def test_patchgan_depth_is_checked_against_the_image(capsys):
    assert main(["train", "cyclegan", "d_layers=4", "--dry-run"]) == 2          # 28 px: 28 / 16 < 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "d_layers" in err[0]
    assert main(["train", "cyclegan", "d_layers=3", "--dry-run"]) == 0


@needs("mnist")
def test_pix2pix_refuses_an_unpaired_dataset(capsys):
    assert main(["train", "pix2pix", "dataset=mnist", "steps=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset" in err[0] and "paired" in err[0]


# -- CycleGAN ----------------------------------------------------------------------------------------

def test_image_pool_stores_until_full_then_swaps_half_the_time():
    from latentlab.nets.translation import pool_query
    pool, count = torch.zeros(4, 1, 2, 2), torch.zeros((), dtype=torch.long)
    first = torch.arange(4.0)[:, None, None, None].expand(4, 1, 2, 2)
    assert torch.equal(pool_query(pool, count, first), first)            # not full: stored and returned
    assert int(count) == 4 and torch.equal(pool, first)
    torch.manual_seed(0)
    new = (100 + torch.arange(2000.0))[:, None, None, None].expand(2000, 1, 2, 2)   # each fake its own value
    got = pool_query(pool, count, new)
    swapped = got[:, 0, 0, 0] != new[:, 0, 0, 0]                       # a stored image came back instead
    assert 0.45 < swapped.double().mean() < 0.55                        # probability 1/2
    assert int(count) == 4
    seen = set(range(4)) | set(range(100, 2100))
    back = got[swapped, 0, 0, 0].tolist()
    assert set(back) <= seen and all(v < 100 + i for v, i in zip(back, swapped.nonzero()[:, 0].tolist()))
    assert set(pool[:, 0, 0, 0].tolist()) <= set(range(100, 2100))     # every first image swapped out by now
    # the pool holds what it returned no longer, and the fakes it kept: stored + returned = seen, once each
    assert sorted(got[:, 0, 0, 0].tolist() + pool[:, 0, 0, 0].tolist()) == sorted(seen)
    empty = torch.zeros(0, 1, 2, 2)
    assert torch.equal(pool_query(empty, torch.zeros((), dtype=torch.long), new[:3]), new[:3])   # size 0: off


def test_least_squares_and_cycle_losses_by_hand():
    from latentlab.losses import (cycle_consistency_loss, discriminator_loss_least_squares,
                                  generator_loss_least_squares, identity_loss, semantic_consistency_loss)
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.5, -1.0])
    assert float(discriminator_loss_least_squares(real, fake)) == pytest.approx(0.5 * (0.5 + 0.625))
    assert float(generator_loss_least_squares(fake)) == pytest.approx((0.25 + 4) / 2)
    x = torch.randn(3, 1, 4, 4)
    assert float(cycle_consistency_loss(x, x)) == 0                      # identity generators: no cycle loss
    assert float(cycle_consistency_loss(x + 0.5, x)) == pytest.approx(0.5)
    assert float(identity_loss(x - 2, x)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="shape"):
        cycle_consistency_loss(x, x[:, :, :2])
    t, o = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 5.0]])        # original read as class 1
    assert float(semantic_consistency_loss(t, o)) == pytest.approx(math.log(1 + math.exp(2)))


CG_TINY = dict(max_train=64, batch_size=4, ngf=4, ndf=4, n_blocks=1, pool_size=6, eval_samples=32, log_every=1,
               image_every=2)


@needs("usps")
def test_cycle_loss_is_zero_for_identity_generators():
    from latentlab.engine import make_fabric
    m = get_method("cyclegan")(_cfg("cyclegan", steps=1, **CG_TINY))
    m.setup(make_fabric(m.cfg))
    m.G_AB = m.G_BA = torch.nn.Identity()
    seen = {}
    m.optimize = lambda name, loss: seen.__setitem__(name, float(loss.detach()))
    b = next(m.batches(0, 1))
    xa, xb = (m.prepare_images(b[d]["x"]) * 2 - 1 for d in ("a", "b"))
    out, _, _ = m.generator_step(xa, xb)
    assert out["cycle"] == 0 and out["identity"] == 0
    assert seen["G"] == pytest.approx(out["loss_g_adv"])


@needs("usps")
def test_cyclegan_streams_are_unpaired_and_one_step_updates_both_players():
    from latentlab.engine import make_fabric
    m = get_method("cyclegan")(_cfg("cyclegan", steps=1, **CG_TINY))
    m.setup(make_fabric(m.cfg))
    assert m.shape == (1, 28, 28)                                      # USPS 16 px resized to MNIST's 28
    b = next(m.batches(0, 1))
    assert set(b) == {"a", "b"} and b["a"]["x"].shape == b["b"]["x"].shape == (4, 1, 28, 28)
    out = m.training_step(b, 0)
    assert {"loss_g_adv", "cycle", "identity", "loss_d_a", "loss_d_b"} <= set(out)
    assert int(m.pool_count[0]) == int(m.pool_count[1]) == 4


@needs("usps")
def test_cyclegan_resume_is_exact_with_its_image_pools(tmp_path):
    kw = dict(CG_TINY, eval_at_end=False)
    train(get_method("cyclegan"), _cfg("cyclegan", steps=4, **kw), out=tmp_path / "a", verbose=False)
    train(get_method("cyclegan"), _cfg("cyclegan", steps=2, **kw), out=tmp_path / "b", verbose=False)
    mid = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["method"]["extra"]
    assert int(mid["pool_count"][0]) == 6                               # full after 2 steps of 4: swapping began
    train(get_method("cyclegan"), _cfg("cyclegan", steps=4, **kw), resume=tmp_path / "b", verbose=False)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["method"]
    cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["method"]
    for k in ("pool_a", "pool_b", "pool_count"):
        assert torch.equal(ca["extra"][k], cb["extra"][k]), k


@needs("usps")
def test_cyclegan_with_cycadas_semantic_loss_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))
    for d in ("mnist", "usps"):
        assert main(["featurenet", d, "--steps", "20", "--quiet"]) == 0
    out = tmp_path / "run"
    args = [f"{k}={v}" for k, v in CG_TINY.items()] + ["steps=3", "lambda_semantic=1"]
    assert main(["train", "cyclegan", *args, "--out", str(out)]) == 0
    import json
    m = json.loads((out / "eval.json").read_text())["metrics"]
    for k in ("cycle_l1_a", "cycle_l1_b", "kid_ab", "kid_ba", "label_accuracy_ab", "label_accuracy_ba",
              "real_accuracy_ab", "real_accuracy_ba"):
        assert k in m and math.isfinite(m[k]), k
    assert any("semantic" in json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines())
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")["method"]
    assert set(state["modules"]) == {"G_AB", "G_BA", "D_A", "D_B"}       # f_S is read, not part of the model
    import latentlab as ll
    assert "label_accuracy_ab" in ll.load_run(out).evaluate("test").metrics
    assert (out / "translations.png").is_file()


@needs("usps")
def test_exported_translations_are_a_dataset_a_da_method_trains_on(tmp_path):
    """CyCADA's pixel-level adaptation: G_AB(A) with A's labels written as a folder; with G_AB the identity the
    folder holds A's images themselves, every labelled one (train + held out, test), and source_only reads it."""
    from latentlab.data import load_dataset
    m = get_method("cyclegan")(_cfg("cyclegan", steps=1, **CG_TINY))
    m.G_AB = torch.nn.Identity()
    root = m.export_translations(tmp_path / "m2u")
    tr, te = load_dataset(str(root), "train"), load_dataset(str(root), "test")
    xa = torch.cat([m.data["a"]["train"][0], m.data["a"]["val"][0]])
    assert tr.images.shape == (len(xa), 1, 28, 28) and torch.equal(torch.as_tensor(tr.images), xa)
    assert torch.equal(torch.as_tensor(tr.labels), torch.cat([torch.as_tensor(m.data["a"][s][1])
                                                              for s in ("train", "val")]))
    assert len(te) == len(m.data["a"]["test"][0])
    res = train(get_method("source_only"), _cfg("source_only", source=root, target="usps", steps=2, batch_size=8,
                                                val_every=2, val_samples=16, tsne_samples=0), out=tmp_path / "so",
                verbose=False)
    assert 0 <= res.eval.metrics["target_test@source_val"] <= 100


def test_npz_dataset_folder_round_trip_and_its_errors(tmp_path):
    from latentlab.data import load_dataset
    from latentlab.data.readers import write_npz_split
    from latentlab.errors import DataError
    x = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    write_npz_split(tmp_path, "train", x, np.array([3, 11]))
    ds = load_dataset(str(tmp_path), "train")
    assert np.array_equal(np.asarray(ds.images), x) and list(ds.labels) == [3, 11] and len(ds.classes) == 12
    with pytest.raises(DataError, match="uint8"):
        write_npz_split(tmp_path, "test", x.astype(np.float32), np.array([0, 1]))
    np.savez(tmp_path / "test.npz", image=x)
    with pytest.raises(DataError, match="test.npz: no array 'label'"):
        load_dataset(str(tmp_path), "test")
    (tmp_path / "test.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(str(tmp_path), "test")

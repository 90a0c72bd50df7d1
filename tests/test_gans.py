"""Image GANs: networks, losses, gradient penalty, clipping, exact resume, FID/KID/PRDC, CLI artifacts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from latentlab import nets
from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.eval import gan_metrics as gm
from latentlab.losses import (acgan_class_loss, critic_loss_wasserstein, discriminator_loss_minimax,
                              generator_loss_wasserstein, gradient_penalty)
from latentlab.methods import get_method

from latentlab.data.paths import resolve_data_dir
from helpers import assert_same_weights, weights



def needs(dataset: str):
    """Skip unless the dataset is in the data dir ($LATENTLAB_DATA, set by conftest to ../shared/data)."""
    return pytest.mark.skipif(not (resolve_data_dir() / dataset).is_dir(), reason=f"{dataset} data absent")


TINY = dict(ngf=8, ndf=8, batch_size=16, max_train=256, log_every=1, ckpt_every=0, image_every=0,
            eval_at_end=False, num_fixed=16)


def _cfg(method, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


# -- networks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size,ch", [(28, 1), (32, 3), (64, 1)])
def test_dcgan_shapes_and_radford_guidelines(size, ch):
    G = nets.create("dcgan_generator", z_dim=100, img_size=size, channels=ch, ngf=8)
    D = nets.create("dcgan_discriminator", img_size=size, channels=ch, ndf=8)
    x = G(torch.rand(3, 100) * 2 - 1)
    assert x.shape == (3, ch, size, size) and x.abs().max() <= 1
    assert D(x).shape == (3,)
    g_mods, d_mods = list(G.net), list(D.features)
    assert isinstance(g_mods[-1], nn.Tanh) and isinstance(g_mods[-2], nn.ConvTranspose2d)   # no BN on output
    assert isinstance(d_mods[0], nn.Conv2d) and isinstance(d_mods[1], nn.LeakyReLU)         # no BN on input
    assert d_mods[1].negative_slope == 0.2
    assert all(m.stride == (2, 2) for m in d_mods if isinstance(m, nn.Conv2d))                # strided, no pooling
    assert not any(isinstance(m, nn.MaxPool2d) for m in D.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) >= 1
    critic = nets.create("dcgan_discriminator", img_size=size, channels=ch, ndf=8, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


def test_conditional_nets_use_the_label():
    torch.manual_seed(0)
    G = nets.create("cdcgan_generator", z_dim=4, img_size=28, channels=1, ngf=8, num_classes=10).eval()
    z = torch.rand(2, 4).repeat(2, 1)
    x = G(z, torch.tensor([0, 1, 2, 3]))
    assert not torch.allclose(x[:2], x[2:])                                  # same z, other label
    for cond in ("concat", "projection"):
        D = nets.create("cdcgan_discriminator", img_size=28, ndf=8, num_classes=10, condition=cond).eval()
        img = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
        s = D(img, torch.tensor([3, 7]))
        assert s.shape == (2,) and s[0] != s[1]
    A = nets.create("acgan_discriminator", img_size=32, channels=3, ndf=8, aux_classes=10)
    assert A(torch.randn(2, 3, 32, 32)).shape == (2, 11)
    with pytest.raises(ValueError, match="img_size"):
        nets.create("dcgan_generator", img_size=48)


# -- losses -----------------------------------------------------------------------------------

def test_wasserstein_and_acgan_losses_hand_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0, 4.0])
    assert critic_loss_wasserstein(real, fake).item() == pytest.approx(2.0 - 2.0)
    assert critic_loss_wasserstein(torch.tensor([5.0]), torch.tensor([1.0])).item() == pytest.approx(-4.0)
    assert generator_loss_wasserstein(fake).item() == pytest.approx(-2.0)
    logits, y = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([0, 2])
    hand = -(np.log(np.exp(2) / (np.exp(2) + 2)) + np.log(1 / 3)) / 2
    assert acgan_class_loss(logits, y).item() == pytest.approx(hand, rel=1e-6)
    with pytest.raises(ValueError):
        acgan_class_loss(logits.softmax(1)[0], y)
    # DCGAN's D loss at logits 0 is 2 log 2
    assert discriminator_loss_minimax(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2 * np.log(2))


def test_gradient_penalty_hand_value_for_a_linear_critic():
    w = torch.tensor([2.0, 2.0, 1.0])                                        # ||w|| = 3 -> (3 - 1)^2 = 4
    critic = lambda x: x.flatten(1) @ w
    real, fake = torch.randn(5, 1, 3, 1), torch.randn(5, 1, 3, 1)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(4.0)


@pytest.mark.parametrize("channels", [1, 3])
def test_gradient_penalty_gradcheck_float64(channels):
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(channels, 3, 3, 2, 1), nn.Softplus(), nn.Flatten(), nn.Linear(3 * 2 * 2, 1),
                           nn.Flatten(0)).double()
    real = torch.randn(3, channels, 4, 4, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(3, channels, 4, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r, f: gradient_penalty(critic, r, f, alpha), (real, fake))
    # and the penalty is differentiable w.r.t. the critic weights (create_graph=True)
    gp = gradient_penalty(critic, real.detach(), fake.detach(), alpha)
    params = [critic[0].weight, critic[0].bias, critic[3].weight]     # the output bias cannot change a gradient
    grads = torch.autograd.grad(gp, params)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_discriminator_overfits_one_batch(outcome_seed):
    torch.manual_seed(outcome_seed)
    D = nets.create("dcgan_discriminator", img_size=28, ndf=8)
    real, fake = torch.rand(16, 1, 28, 28) * 2 - 1, torch.randn(16, 1, 28, 28).clamp(-1, 1)
    opt = torch.optim.Adam(D.parameters(), 2e-3, betas=(0.5, 0.999))
    first = None
    for _ in range(40):
        loss = discriminator_loss_minimax(D(real), D(fake))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 1.0 and loss.item() < 0.05


# -- training ---------------------------------------------------------------------------------

@needs("mnist")
def test_wgan_clipping_keeps_every_critic_weight_in_range(tmp_path):
    c = 0.01
    paper = get_method("wgan")(_cfg("wgan", **TINY))
    assert max(p.abs().max().item() for p in paper.D.parameters()) > c          # initial weights exceed c
    assert [paper.critic_iterations(t) for t in (0, 24, 25, 499, 500)] == [5] * 5
    orig = get_method("wgan")(_cfg("wgan", schedule="original", **TINY))
    assert [orig.critic_iterations(t) for t in (0, 24, 25, 499, 500, 1000)] == [100, 100, 5, 5, 100, 100]
    train(get_method("wgan"), _cfg("wgan", steps=2, clip=c, **TINY), out=tmp_path / "w", verbose=False)
    w = {k: v for k, v in weights(tmp_path / "w").items() if k.startswith("D.") and v.is_floating_point()
         and "running" not in k}
    assert w and all(v.abs().max().item() <= c for v in w.values())


def test_wgan_dry_run_shows_algorithm_1(capsys):
    assert main(["train", "wgan", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for line in ("lr: 5.0e-05", "clip: 0.01", "batch_size: 64", "n_critic: 5", "optimizer: rmsprop"):
        assert line in out, (line, out)
    assert main(["train", "wgan", "clip=-1", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "clip" in err[0]
    assert main(["train", "wgan_gp", "critic_norm=batch", "--dry-run"]) == 2


@needs("mnist")
@pytest.mark.parametrize("method", ["wgan", "acgan"])
def test_resume_is_exact_with_both_optimizers_ema_and_fixed_noise(tmp_path, method):
    kw = dict(TINY, ema_decay=0.9, image_every=2, n_critic=2) if method == "wgan" else dict(TINY, ema_decay=0.9,
                                                                                              image_every=2)
    train(get_method(method), _cfg(method, steps=4, **kw), out=tmp_path / "a", verbose=False)
    train(get_method(method), _cfg(method, steps=2, **kw), out=tmp_path / "b", verbose=False)
    train(get_method(method), _cfg(method, steps=4, **kw), resume=tmp_path / "b", verbose=False)
    wa = weights(tmp_path / "a")
    assert any(k.startswith("G_ema.") for k in wa)
    assert_same_weights(wa, weights(tmp_path / "b"))
    ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["method"]
    cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["method"]
    assert set(ca["optimizers"]) == {"D", "G"}
    for name in ("D", "G"):
        for pid, st in ca["optimizers"][name]["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    assert torch.equal(v, cb["optimizers"][name]["state"][pid][k])
    for k in ("fixed_z", "fixed_y", "progress", "progress_steps"):
        assert torch.equal(ca["extra"][k], cb["extra"][k]), k
    assert ca["extra"]["progress"].shape[0] == 2


@needs("mnist")
@pytest.mark.parametrize("d_fake_class", [False, True])
def test_acgan_d_class_loss_on_reals_only_unless_asked(d_fake_class):
    from latentlab.engine import make_fabric
    m = get_method("acgan")(_cfg("acgan", steps=1, d_fake_class=d_fake_class, **TINY))
    m.setup(make_fabric(m.cfg))
    m.optimize = lambda name, loss: None                                  # read the loss, change nothing
    x, y = m.real(next(m.batches(0, 1)))
    _, l_c, fake, c = m.discriminator_step(x, y)
    with torch.no_grad():
        want = acgan_class_loss(m.D(x)[:, 1:], y)
        if d_fake_class:                                                  # Odena et al., Eq. 2
            want = want + acgan_class_loss(m.D(fake.detach())[:, 1:], c)
    assert float(l_c) == pytest.approx(float(want), rel=1e-5)


@needs("mnist")
def test_lr_decay_linear_falls_step_by_step_to_its_last_rate(tmp_path):
    """Step t (0-based) runs at lr (1 - t / steps): the last of 4 steps at lr / 4; the engine steps the schedulers
    after every step but the last (no rate is used after it)."""
    train(get_method("dcgan"), _cfg("dcgan", steps=4, lr_decay="linear", **TINY), out=tmp_path / "r", verbose=False)
    ck = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["method"]
    for name in ("D", "G"):
        assert ck["optimizers"][name]["param_groups"][0]["lr"] == pytest.approx(1e-3 / 4, abs=1e-12)
        assert ck["schedulers"][name]["last_epoch"] == 3


# -- metrics ----------------------------------------------------------------------------------

def test_fid_matches_numpy_scipy_and_torchmetrics():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(600, 16, generator=g, dtype=torch.float64)
    b = torch.randn(500, 16, generator=g, dtype=torch.float64) @ (torch.eye(16, dtype=torch.float64)
                                                                   + 0.3 * torch.randn(16, 16, generator=g,
                                                                                       dtype=torch.float64)) + 0.5
    ours, ref = gm.fid(a, b), gm.fid_numpy(a.numpy(), b.numpy())
    assert ref > 1 and ours == pytest.approx(ref, rel=1e-6)
    assert ours == pytest.approx(gm.fid_torchmetrics(a, b), rel=1e-9)
    c = torch.randn(800, 64, generator=g, dtype=torch.float64) * torch.linspace(0.1, 3, 64, dtype=torch.float64)
    assert gm.fid(a.repeat(1, 4), c) == pytest.approx(gm.fid_torchmetrics(a.repeat(1, 4), c), rel=1e-9)
    assert gm.fid(a, a) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("full_kernel", [True, False])
def test_kid_equals_torchmetrics_for_the_same_subsets(monkeypatch, full_kernel):
    from torchmetrics.image.kid import KernelInceptionDistance
    g = torch.Generator().manual_seed(0)
    real = torch.randn(700, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(600, 8, generator=g, dtype=torch.float64) * 1.2 + 0.1
    ref = KernelInceptionDistance(feature=gm._Features(8), subsets=15, subset_size=300, normalize=True)
    ref.update(real, real=True)
    ref.update(fake, real=False)
    torch.manual_seed(5)
    mean, std = (float(t) for t in ref.compute())
    monkeypatch.setattr(gm, "KID_FULL_KERNEL_MAX", 10_000 if full_kernel else 10)
    ours = gm.kid(real, fake, subsets=15, subset_size=300, seed=5)
    assert mean > 0 and ours[0] == pytest.approx(mean, rel=1e-9) and ours[1] == pytest.approx(std, rel=1e-6)
    assert ours[2] == 300


def test_manifold_metrics_equal_their_definitions_brute_force():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(300, 3, generator=g), torch.randn(250, 3, generator=g) * 0.7 + 0.3
    d_rr, d_ff, d_fr = (torch.cdist(a.double(), b.double()) for a, b in ((real, real), (fake, fake), (fake, real)))
    kth = lambda d, k: d.sort(1).values[:, k]                  # column 0 is the point itself
    r3, r5, f3 = kth(d_rr, 3), kth(d_rr, 5), kth(d_ff, 3)
    m = gm.manifold_metrics(real, fake, k_pr=3, k_dc=5, chunk=64)   # several chunks
    assert m["precision"] == pytest.approx(float((d_fr <= r3[None]).any(1).double().mean()))
    assert m["recall"] == pytest.approx(float((d_fr <= f3[:, None]).any(0).double().mean()))
    assert m["density"] == pytest.approx(float((d_fr <= r5[None]).sum(1).double().mean() / 5))
    assert m["coverage"] == pytest.approx(float((d_fr.min(0).values <= r5).double().mean()))
    assert 0 < m["recall"] < 1 and 0 < m["coverage"] < 1


def test_precision_recall_density_coverage_on_planted_distributions():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(800, 2, generator=g)
    same = gm.precision_recall(real, torch.randn(800, 2, generator=g))
    assert same["precision"] > 0.85 and same["recall"] > 0.85
    collapsed = real[real[:, 0] > 1.0]                                   # only one tail of the real data
    pr = gm.precision_recall(real, collapsed + 0.01 * torch.randn(collapsed.shape, generator=g))
    assert pr["precision"] > 0.9 and pr["recall"] < 0.4
    far = gm.precision_recall(real, torch.randn(800, 2, generator=g) + 10)
    assert far["precision"] == 0 and far["recall"] == 0
    dc = gm.density_coverage(real, torch.randn(800, 2, generator=g))
    assert 0.7 < dc["density"] < 1.3 and dc["coverage"] > 0.85
    assert gm.density_coverage(real, collapsed)["coverage"] < 0.4
    h = gm.class_histogram(torch.tensor([0, 0, 1, 1]), 4)
    assert h["classes_covered"] == 2 and h["class_kl"] == pytest.approx(np.log(2))


@needs("mnist")
def test_fid_real_halves_near_zero_and_growing_with_noise_and_blur(featurenet_cache):
    from latentlab.data import load_dataset
    from latentlab.eval.featurenet import load_featurenet
    fn = load_featurenet("mnist")
    x = load_dataset("mnist", "test").images[:4096].float() / 255
    a, b = x[:2048], x[2048:]
    fa = fn.features(a)
    fid = lambda y: gm.fid(fa, fn.features(y.clamp(0, 1)))
    base = fid(b)
    g = torch.Generator().manual_seed(0)
    noisy = [fid(b + s * torch.randn(b.shape, generator=g)) for s in (0.2, 0.5)]
    k = torch.ones(1, 1, 5, 5) / 25
    blurred = [fid(F.conv2d(b, k[..., 1:-1, 1:-1] * 25 / 9, padding=1)), fid(F.conv2d(b, k, padding=2))]
    assert base < 0.25 * noisy[0] and noisy[0] < noisy[1]
    assert base < blurred[0] < blurred[1]


@needs("mnist")
def test_stacked_mnist_dataset_and_per_channel_classifier(featurenet_cache):
    from latentlab.data import load_dataset
    from latentlab.eval.featurenet import load_featurenet
    s = load_dataset("stacked_mnist", "test")
    assert s.shape == (3, 28, 28) and s.num_classes == 1000 and len(s) == 10_000
    assert torch.equal(s.labels[:50], load_dataset("stacked_mnist", "test").labels[:50])    # deterministic
    assert len(s.labels.unique()) > 900
    fn = load_featurenet("stacked_mnist")
    x = s.images[:32].float() / 255
    per = [fn.model(x[:, c:c + 1]).argmax(1) for c in range(3)]
    assert torch.equal(fn.predict(x), 100 * per[0] + 10 * per[1] + per[2])
    pred, conf = fn.predict_confidence(x)                   # the least sure of the three digits
    least = torch.stack([fn.model(x[:, c:c + 1]).softmax(1).max(1).values for c in range(3)]).min(0).values
    assert torch.equal(pred, fn.predict(x)) and torch.allclose(conf, least)
    assert ((0 < conf) & (conf <= 1)).all()
    noise = torch.rand(32, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    assert fn.predict_confidence(noise)[1].mean() < conf.mean()          # real digits read surer than noise
    assert fn.features(x).shape == (32, 3 * fn.model.num_features)


# -- CLI ----------------------------------------------------------------------------------------

@needs("mnist")
def test_tiny_cli_runs_give_grids_metrics_eval_and_samples(tmp_path, featurenet_cache, capsys):
    run = tmp_path / "cgan"
    args = ["train", "cgan", "--out", str(run), "steps=4", "ngf=8", "ndf=8", "batch_size=16", "max_train=256",
            "log_every=2", "image_every=2", "eval_samples=2048", "fid_every=2", "fid_track_samples=256",
            "ema_decay=0.5"]
    assert main(args) == 0
    for f in ("samples.png", "interp_lerp.png", "interp_slerp.png", "progression.png", "class_grid.png",
              "eval.json", "best.json", "best_generator.safetensors", "images/samples_0000002.png",
              "images/class_grid_0000004.png"):
        assert (run / f).is_file(), f
    ev = json.loads((run / "eval.json").read_text())
    for k in ("fid", "kid", "precision", "recall", "density", "coverage", "class_coverage", "class_consistency",
              "confident_fraction"):
        assert k in ev["metrics"], k
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fid", "kid", "precision", "recall"} <= out.keys()
    p = out["protocol"]
    assert p["n_fake"] == p["n_real"] == 2048 and p["reference_split"].startswith("val")
    assert len(p["feature_net_sha256"]) == 64 and p["noise_seed"] == 1
    assert out["fid"] == pytest.approx(ev["metrics"]["fid"], rel=1e-9)        # evaluation is deterministic
    assert main(["eval", str(run), "--json", "--protocol", "test"]) == 0     # the reported figures' reference
    test = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert test["protocol"]["reference_split"].startswith("test") and test["fid"] != out["fid"]
    assert main(["eval", str(run), "--protocol", "tset"]) == 2
    assert main(["sample", str(run), "--n", "16", "--class", "3", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file()
    assert main(["sample", str(run), "--n", "16", "--class", "12", "--out", str(tmp_path / "h.png")]) == 2

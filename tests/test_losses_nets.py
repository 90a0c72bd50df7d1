"""Losses against hand-computed values; shapes and gradients of every registered network."""

from __future__ import annotations

import math

import pytest
import torch

from latentlab import nets
from latentlab.eval.modes import mode_coverage
from latentlab.losses import (discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating,
                              r1_penalty)


def test_gan_losses_hand_computed():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 0.5])
    sig = lambda v: 1 / (1 + math.exp(-v))
    d = -(math.log(sig(2)) + math.log(sig(0))) / 2 - (math.log(1 - sig(-1)) + math.log(1 - sig(0.5))) / 2
    assert discriminator_loss_minimax(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert generator_loss_minimax(fake).item() == pytest.approx((math.log(1 - sig(-1)) + math.log(1 - sig(0.5))) / 2, rel=1e-6)
    assert generator_loss_nonsaturating(fake).item() == pytest.approx(-(math.log(sig(-1)) + math.log(sig(0.5))) / 2, rel=1e-6)


def test_gan_losses_stable_for_large_logits_and_gradcheck():
    big = torch.tensor([80.0, -80.0])
    assert torch.isfinite(discriminator_loss_minimax(big, big)) and torch.isfinite(generator_loss_minimax(big))
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(discriminator_loss_minimax, (x, y))
    assert torch.autograd.gradcheck(generator_loss_nonsaturating, (x,))
    # saturation: at D(G(z)) -> 0 the minimax gradient vanishes, the non-saturating one does not
    l = torch.tensor([-10.0], requires_grad=True)
    g_mm, = torch.autograd.grad(generator_loss_minimax(l), l)
    g_ns, = torch.autograd.grad(generator_loss_nonsaturating(l), l)
    assert abs(g_mm.item()) < 1e-4 and abs(g_ns.item()) > 0.99


def test_r1_penalty_hand_computed():
    # D(x) = w.x + x0^2: grad = w + (2 x0, 0); for x = (1, 2), w = (3, -1): grad (5, -1), |grad|^2 = 26;
    # for x = (0, 0): grad (3, -1), |grad|^2 = 10; mean 18
    w = torch.tensor([3.0, -1.0])
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    logits = x @ w + x[:, 0] ** 2
    r1 = r1_penalty(logits, x)
    assert r1.item() == pytest.approx(18.0)
    g, = torch.autograd.grad(r1, x)                      # create_graph: the penalty is differentiable in x
    assert torch.allclose(g, torch.tensor([[10.0, 0.0], [6.0, 0.0]]))   # d/dx0 of mean((w0 + 2 x0)^2 + w1^2)
    with pytest.raises(ValueError, match="require grad"):
        r1_penalty(logits.detach(), x.detach())


@pytest.mark.parametrize("name", [n for n in nets.list_nets() if "dcgan" in n or "acgan" in n])
def test_dcgan_family_initialisation_is_the_papers(name):
    """Radford et al. 2016, Sec. 4: weights N(0, 0.02), BatchNorm scales N(1, 0.02), zero biases."""
    kw, _ = nets.NETS[name].example()
    net = nets.create(name, **{**kw, **({"ngf": 32} if "ngf" in kw else {"ndf": 32})})
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert len(w) > 5000 and abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if bns:
        g = torch.cat([m.weight for m in bns]).detach()
        assert abs(g.mean().item() - 1) < 0.01 and 0.01 < g.std().item() < 0.03


@pytest.mark.parametrize("name", nets.list_nets())
def test_every_registered_network_shapes_and_gradients(name):
    torch.manual_seed(0)
    kwargs, inputs = nets.NETS[name].example()
    model = nets.create(name, **kwargs)
    out = model(*inputs)
    out = out[0] if isinstance(out, (tuple, list)) else out
    if isinstance(out, dict):                                  # one output per task (nets.multitask)
        out = torch.cat([v.flatten(1) for v in out.values()], 1)
    assert out.shape[0] == inputs[0].shape[0] and torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    if hasattr(model, "forward_features"):
        f = model.forward_features(inputs[0])
        assert f.shape == (inputs[0].shape[0], model.num_features)


def test_unknown_network():
    from latentlab.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown network 'nope'"):
        nets.create("nope")


def test_mode_coverage_planted():
    modes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    sigma = 0.1
    samples = torch.tensor([[0.05, 0.0], [0.0, 0.29], [1.0, 0.31], [0.5, 0.5]])
    r = mode_coverage(samples, modes, sigma)
    # sample 0 -> mode 0 (hq), 1 -> mode 0 (0.29 < 0.3, hq), 2 -> mode 1 (0.31 > 0.3, low), 3 -> tie, far (low)
    assert r["modes"] == 1 and r["hq_fraction"] == pytest.approx(0.5)
    assert r["kl_modes"] == pytest.approx(math.log(3))
    full = mode_coverage(modes.repeat(10, 1), modes, sigma)
    assert full["modes"] == 3 and full["hq_fraction"] == 1.0 and full["kl_modes"] == pytest.approx(0.0)

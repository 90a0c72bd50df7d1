"""Losses against hand-computed values; shapes and gradients of every registered network."""

from __future__ import annotations

import math

import pytest
import torch

from latentlab import nets
from latentlab.eval.modes import mode_coverage
from latentlab.losses import discriminator_loss_minimax, generator_loss_minimax, generator_loss_nonsaturating


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


@pytest.mark.parametrize("name", nets.list_nets())
def test_every_registered_network_shapes_and_gradients(name):
    torch.manual_seed(0)
    kwargs, inputs = nets.NETS[name].example()
    model = nets.create(name, **kwargs)
    out = model(*inputs)
    out = out[0] if isinstance(out, (tuple, list)) else out
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

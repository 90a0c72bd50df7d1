"""StyleGAN: the modulated convolution, AdaIN, the mapping network and truncation, style mixing, lazy R1 and
exact resume; its figures end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latentlab import nets
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.losses import r1_penalty
from latentlab.methods import get_method
from latentlab.nets.stylegan import ModulatedConv2d, StyledLayer, mix_styles

from conftest import needs
from helpers import assert_same_weights, weights


def _cfg(**kw):
    return resolve_config(get_method("stylegan").Config, "stylegan", None, {k: str(v) for k, v in kw.items()})


def test_modulated_conv_is_a_plain_conv_when_styles_are_one_and_demodulation_is_off():
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 5, 3, demodulate=False)
    x = torch.randn(2, 3, 8, 8)
    want = F.conv2d(x, conv.weight * conv.scale, padding=1)
    assert torch.allclose(conv(x, torch.ones(2, 3)), want, atol=1e-6)
    s = torch.tensor([[2.0, 1.0, 1.0], [1.0, 1.0, 0.5]])               # a style scales its input channel
    got = conv(x, s)
    assert torch.allclose(got, F.conv2d(x * s[:, :, None, None], conv.weight * conv.scale, padding=1), atol=1e-5)


def test_demodulation_normalises_each_output_filter():
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, demodulate=True)
    x = torch.zeros(1, 4, 5, 5)
    x[0, :, 2, 2] = torch.randn(4)                                     # an impulse reads the filters back
    s = torch.rand(1, 4) * 3
    # output = sum over in-channels of the demodulated filter times the impulse; with unit-norm filters, the
    # response to a style-free unit impulse at each input channel has norm 1 over (in, k, k)
    w = conv.weight[None] * conv.scale * s[:, None, :, None, None]
    w = w * torch.rsqrt(w.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
    assert torch.allclose(w.pow(2).sum((2, 3, 4)), torch.ones(1, 6), atol=1e-5)
    assert torch.allclose(conv(x, s), F.conv2d(x, w[0], padding=1), atol=1e-5)
    assert torch.allclose(conv(x, s), conv(x, 7 * s), atol=1e-5)       # scale-free in the style


def test_adain_gives_each_channel_the_styles_mean_and_scale():
    torch.manual_seed(0)
    layer = StyledLayer(3, 4, 8, "adain", demodulate=False, up=False)
    with torch.no_grad():
        layer.affine.weight.zero_()
        layer.affine.bias.copy_(torch.cat([torch.tensor([2.0, 0.5, 1.0, 3.0]), torch.tensor([0.1, -1.0, 0.0, 4.0])])
                                / layer.affine.lr_mul)
    out = layer(torch.randn(2, 3, 8, 8), torch.randn(2, 8), noise=torch.zeros(2, 1, 8, 8))
    assert torch.allclose(out.mean((2, 3)), torch.tensor([0.1, -1.0, 0.0, 4.0]).expand(2, 4), atol=1e-4)
    assert torch.allclose(out.std((2, 3), unbiased=False), torch.tensor([2.0, 0.5, 1.0, 3.0]).expand(2, 4), atol=1e-3)


def test_noise_inputs_start_at_zero_strength_and_change_only_the_noise_path():
    torch.manual_seed(0)
    G = nets.create("stylegan_generator", img_size=32, channels=1, z_dim=8, w_dim=8, n_mlp=2, ngf=4)
    assert all(float(l.noise_strength.detach().abs().sum()) == 0 for l in G.layers)
    ws = G.map(torch.randn(2, 8))[:, None].expand(-1, G.num_ws, -1)
    a = G.synthesis(ws, [torch.randn(2, 1, h, w) for h, w in G.noise_shapes()])
    b = G.synthesis(ws, [torch.randn(2, 1, h, w) for h, w in G.noise_shapes()])
    assert torch.equal(a, b)                                           # zero strength: noise has no effect yet
    with torch.no_grad():
        G.layers[-1].noise_strength.fill_(1.0)
    c = G.synthesis(ws, [torch.randn(2, 1, h, w) for h, w in G.noise_shapes()])
    assert not torch.allclose(a, c)
    assert G.num_ws == 8 and [h for h, _ in G.noise_shapes()] == [4, 8, 8, 16, 16, 32, 32]
    assert G.style_resolutions() == [4, 8, 8, 16, 16, 32, 32, 32]    # tRGB at r reads the next conv's style


def test_style_mixing_switches_w_at_the_chosen_layer():
    w1, w2 = torch.zeros(3, 4), torch.ones(3, 4)
    ws = mix_styles(w1, w2, 2, 5)
    assert ws.shape == (3, 5, 4) and (ws[:, :2] == 0).all() and (ws[:, 2:] == 1).all()
    per = mix_styles(w1, w2, torch.tensor([1, 3, 4]), 5)
    assert per[0, :, 0].tolist() == [0, 1, 1, 1, 1] and per[2, :, 0].tolist() == [0, 0, 0, 0, 1]
    torch.manual_seed(0)
    G = nets.create("stylegan_generator", img_size=28, channels=1, z_dim=8, w_dim=8, n_mlp=2, ngf=4).eval()
    for l in G.layers:
        torch.nn.init.ones_(l.noise_strength)
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    torch.manual_seed(5)
    got = G(z1, z_mix=z2, crossover=3)
    torch.manual_seed(5)
    hand = G.synthesis(torch.cat([G.map(z1)[:, None].expand(-1, 3, -1), G.map(z2)[:, None].expand(-1, 3, -1)], 1))
    assert G.num_ws == 6 and torch.equal(got, hand)
    torch.manual_seed(5)
    assert not torch.equal(got, G(z1))                                 # the second latent did change the image


def test_mapping_depth_zero_and_truncation():
    G = nets.create("stylegan_generator", img_size=32, channels=1, z_dim=8, w_dim=8, n_mlp=0, ngf=4)
    z = torch.randn(5, 8)
    assert torch.allclose(G.map(z), z / z.pow(2).mean(1, keepdim=True).sqrt(), atol=1e-5)
    G = nets.create("stylegan_generator", img_size=32, channels=1, z_dim=8, w_dim=8, n_mlp=3, ngf=4)
    G.map(torch.randn(64, 8), track=True)
    assert G.w_avg.abs().sum() > 0
    w = G.map(z)
    assert torch.allclose(G.map(z, psi=0.0), G.w_avg.expand(5, -1))   # psi = 0: every z gives the mean w
    assert torch.allclose(G.map(z, psi=0.5), G.w_avg + 0.5 * (w - G.w_avg), atol=1e-6)
    with pytest.raises(ValueError, match="z_dim"):
        nets.create("stylegan_generator", z_dim=8, w_dim=16, n_mlp=0)


def test_tanh_output_squashes_the_linear_image_of_the_same_weights():
    torch.manual_seed(0)
    lin = nets.create("stylegan_generator", img_size=28, channels=1, z_dim=8, w_dim=8, n_mlp=2, ngf=4).eval()
    tanh = nets.create("stylegan_generator", img_size=28, channels=1, z_dim=8, w_dim=8, n_mlp=2, ngf=4,
                       output="tanh").eval()
    tanh.load_state_dict(lin.state_dict())                            # the option adds no weight
    ws = lin.map(torch.randn(4, 8))[:, None].expand(-1, lin.num_ws, -1)
    noise = [torch.randn(4, 1, h, w) for h, w in lin.noise_shapes()]
    x = lin.synthesis(ws, noise)
    assert x.abs().max() > 1                                           # linear: not bounded at initialisation
    assert torch.allclose(tanh.synthesis(ws, noise), torch.tanh(x), atol=1e-6)
    with pytest.raises(ValueError, match="output"):
        nets.create("stylegan_generator", output="sigmoid")


TINY = dict(ngf=4, ndf=4, z_dim=8, w_dim=8, n_mlp=2, batch_size=8, max_train=128, num_fixed=16, log_every=1,
            image_every=0, eval_at_end=False)


@needs("mnist")
def test_lazy_r1_is_the_autograd_penalty_every_r1_every_steps():
    from latentlab.engine import make_fabric
    m = get_method("stylegan")(_cfg(steps=4, r1_every=4, r1_gamma=10, **TINY))
    m.setup(make_fabric(m.cfg))
    d = m.optimizers["D"].param_groups[0]
    assert d["lr"] == pytest.approx(2e-3 * 4 / 5) and d["betas"][1] == pytest.approx(0.99 ** 0.8)
    seen = []
    m.optimize = lambda name, loss: seen.append((name, float(loss.detach())))
    x, _ = m.real(next(m.batches(0, 1)))
    _, fake, r1 = m.discriminator_step(x, step=1)
    assert r1 is None and [n for n, _ in seen] == ["D"]               # not a lazy step: the loss step only
    seen.clear()
    _, fake, r1 = m.discriminator_step(x, step=4)
    xr = x.detach().requires_grad_(True)
    g, = torch.autograd.grad(m.D(xr).sum(), xr)
    assert float(r1) == pytest.approx(float(g.flatten(1).pow(2).sum(1).mean()), rel=1e-4)
    assert float(r1) == pytest.approx(float(r1_penalty(m.D(xr), xr)), rel=1e-4)
    with torch.no_grad():
        plain = float(F.softplus(-m.D(x)).mean() + F.softplus(m.D(fake)).mean())
    assert [n for n, _ in seen] == ["D", "D"]                          # the loss step, then R1's own step
    assert seen[0][1] == pytest.approx(plain, rel=1e-4)
    assert seen[1][1] == pytest.approx(10 / 2 * float(r1) * 4, rel=1e-4)


@needs("mnist")
@pytest.mark.parametrize("style", ["adain", "modulated"])
def test_stylegan_resume_is_exact_with_ema_and_w_avg(tmp_path, style):
    kw = dict(TINY, style=style, r1_every=2, ema_decay=0.9)
    train(get_method("stylegan"), _cfg(steps=4, **kw), out=tmp_path / "a", verbose=False)
    train(get_method("stylegan"), _cfg(steps=2, **kw), out=tmp_path / "b", verbose=False)
    train(get_method("stylegan"), _cfg(steps=4, **kw), resume=tmp_path / "b", verbose=False)
    wa = weights(tmp_path / "a")
    assert "G.w_avg" in wa and "G_ema.w_avg" in wa and wa["G.w_avg"].abs().sum() > 0
    assert_same_weights(wa, weights(tmp_path / "b"))


@needs("mnist")
def test_stylegan_end_to_end_with_the_papers_figures(tmp_path, featurenet_cache, monkeypatch):
    from latentlab.cli import main
    monkeypatch.setenv("LATENTLAB_CACHE", str(featurenet_cache))
    out = tmp_path / "run"
    args = [f"{k}={v}" for k, v in {**TINY, "eval_at_end": True, "eval_samples": 64}.items()]
    assert main(["train", "stylegan", *args, "steps=3", "--out", str(out)]) == 0
    for f in ("samples.png", "samples_truncated.png", "style_mixing.png", "noise.png", "noise_layers.png"):
        assert (out / f).is_file(), f
    import json
    m = json.loads((out / "eval.json").read_text())["metrics"]
    assert "kid" in m and "precision" in m


@needs("mnist")
def test_mixing_and_path_length_protocols(tmp_path, featurenet_cache, monkeypatch):
    from latentlab.eval import run_protocol
    from latentlab.engine import make_fabric
    monkeypatch.setenv("LATENTLAB_CACHE", str(featurenet_cache))
    m = get_method("stylegan")(_cfg(steps=1, eval_samples=64, **TINY))
    m.setup(make_fabric(m.cfg))
    x = m.mixed_sample(6, 1, seed=0)
    assert torch.equal(x, m.mixed_sample(6, 1, seed=0)) and x.shape == (6, 1, 28, 28)
    r = run_protocol(m, "mixing")
    assert set(r.metrics) == {f"kid_mix{k}" for k in (1, 2, 3, 4)} and "Table 2" in r.protocol["mixing"]
    p = m.path_length(n=64)
    assert p.metrics["ppl_w"] >= 0 and "proxy" in p.protocol["distance"]
    with torch.no_grad():                                              # a generator constant in w: no path length
        for l in m._g().layers:
            l.affine.weight.zero_()
        for t in m._g().to_rgb:
            t.affine.weight.zero_()
    assert m.path_length(n=64).metrics["ppl_w"] == pytest.approx(0, abs=1e-6)


def test_discriminator_gradients_stay_finite_when_the_batch_agrees_somewhere():
    """MNIST's corners are background in every image: the minibatch standard deviation there is 0, and its
    gradient (also R1's second-order one) must stay finite (StyleGAN's sqrt(var + 1e-8))."""
    torch.manual_seed(0)
    D = nets.create("stylegan_discriminator", img_size=28, channels=1, ndf=4)
    x = torch.full((8, 1, 28, 28), -1.0)
    x[:, :, 10:18, 10:18] = torch.rand(8, 1, 8, 8)                     # only the centre differs
    x.requires_grad_(True)
    logits = D(x)
    r1 = r1_penalty(logits, x)
    (logits.mean() + r1).backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())
    same = torch.full((4, 1, 28, 28), 0.3, requires_grad=True)         # every image equal: std 0 everywhere
    D.zero_grad()
    out = D(same)
    (out.mean() + r1_penalty(out, same)).backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters())


def test_ema_half_life_ramps_up_then_holds_the_papers():
    """StyleGAN2-ADA's ema_rampup: half-life min(h, 0.05 * steps); the average follows G early on."""
    import math
    from latentlab.nets.ema import ramped_decay
    d = ramped_decay(0.9978, 0.05)
    h = math.log(0.5) / math.log(0.9978)                      # ~315 steps, 10k images at batch 32
    assert d(20) == pytest.approx(0.5)                        # half-life 1 step after 20
    assert d(100) == pytest.approx(0.5 ** (1 / 5))
    assert d(10 * int(h) * 20) == pytest.approx(0.9978)       # capped at the configured decay
    assert all(d(k) <= d(k + 1) for k in range(1, 10000, 37))
    assert ramped_decay(0.999, 0)(5) == 0.999

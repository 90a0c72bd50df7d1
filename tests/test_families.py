"""The generative families beside the GANs (#20): VAE, flow and DDPM, the shapes set with known factors, MIG,
the interpolation protocol, and exact resume of each."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import latentlab as ll
from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.data import load_dataset, shapes
from latentlab.engine import make_fabric, train
from latentlab.errors import ConfigError
from latentlab.eval.disentangle import mig_score
from latentlab.losses.likelihood import (bernoulli_log_likelihood, discretized_gaussian_log_likelihood,
                                         discretized_logistic_log_likelihood, elbo, gaussian_kl,
                                         gaussian_kl_standard, iwae_bound)
from latentlab.methods import get_method
from latentlab.nets.flow import Glow
from conftest import needs
from helpers import assert_same_weights, weights

TINY = {"vae": dict(hidden=16, z_dim=4, eval_k=20),
        "flow": dict(depth=2, hidden=8, warmup=2),
        "ddpm": dict(base=8, mults="[1,2]", timesteps=20, sample_steps=5, eval_k=4, ema_decay=0.9)}
COMMON = dict(dataset="digits", batch_size=16, log_every=1, ckpt_every=0, image_every=0, eval_at_end=False,
              num_fixed=8)


def _cfg(method, **kw):
    kw = {**COMMON, **TINY[method], **kw}
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


def _built(method, **kw):
    m = get_method(method)(_cfg(method, **kw))
    m.setup(make_fabric(m.cfg))
    return m


# -- the likelihood terms, by hand -----------------------------------------------------------------------
def test_elbo_of_a_tiny_model_by_hand():
    """x = (1, 0), decoder logits (0, ln 3); q = N((1, 0), diag(1, 2)):
    log p(x|z) = log 1/2 + log 1/4, KL = 1/2 (mu^2 + var - 1 - log var) summed = 1/2 + (1 - log 2) / 2."""
    x, logits = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(3)]])
    rec = bernoulli_log_likelihood(logits, x)
    assert rec.item() == pytest.approx(math.log(0.5) + math.log(0.25))
    kl = gaussian_kl_standard(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2)]]))
    assert kl.item() == pytest.approx(0.5 + 0.5 * (1 - math.log(2)))
    assert elbo(rec, kl).item() == pytest.approx(math.log(0.125) - 0.5 - 0.5 * (1 - math.log(2)))
    assert elbo(rec, kl, beta=4).item() == pytest.approx(rec.item() - 4 * kl.item())
    # the general Gaussian KL agrees with the standard-normal one, and is 0 between equal Gaussians
    mu, lv = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(gaussian_kl(mu, lv, torch.zeros(3, 5), torch.zeros(3, 5)), gaussian_kl_standard(mu, lv))
    assert torch.allclose(gaussian_kl(mu, lv, mu, lv), torch.zeros(3))
    # the IWAE bound of k equal weights is that weight; of weights (1, 3): log 2
    assert iwae_bound(torch.full((7, 2), -3.0)).tolist() == pytest.approx([-3.0, -3.0])
    assert iwae_bound(torch.log(torch.tensor([[1.0], [3.0]]))).item() == pytest.approx(math.log(2))


def test_the_vae_computes_the_elbo_of_a_tiny_model_with_known_weights():
    """Weights zero, biases set: q(z|x) = N(mu, exp(lv)) and logits b for every x, so the ELBO is by hand
    sum_d log Bernoulli(x_d; sigmoid(b_d)) - 1/2 sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j). With q = N(0, I) = p(z) as
    well, every importance weight p(x, z) / q(z|x) equals p(x|z) = p(x), so the estimate is exact for any k."""
    m = _built("vae", z_dim=2, hidden=3, depth=1)
    for p in [*m.enc.parameters(), *m.dec.parameters()]:
        torch.nn.init.zeros_(p)
    with torch.no_grad():
        m.enc.net[-1].bias.copy_(torch.tensor([0.5, -1.0, 0.0, math.log(2)]))      # mu = (0.5, -1), lv = (0, ln 2)
        m.dec.net[-1].bias.copy_(torch.linspace(-2, 2, 64))
    x = (torch.arange(64) % 3 == 0).float()[None]                                  # a binary 8x8 "image"
    b = torch.linspace(-2, 2, 64)
    rec = (x * torch.log(torch.sigmoid(b)) + (1 - x) * torch.log(1 - torch.sigmoid(b))).sum()
    kl = 0.5 * ((0.25 + 1 - 1 - 0) + (1 + 2 - 1 - math.log(2)))
    mu, lv = m.posterior(x)
    z = mu + (0.5 * lv).exp() * torch.randn_like(mu)
    got = elbo(m.log_px_z(z, x), gaussian_kl_standard(mu, lv))
    assert got.item() == pytest.approx((rec - kl).item(), rel=1e-5)
    x8 = (x * 255).to(torch.uint8).view(1, 1, 8, 8)                             # binarising 0/255 is exact
    with torch.no_grad():
        m.enc.net[-1].bias.zero_()
    assert m.log_prob(x8, torch.Generator().manual_seed(0), k=7).item() == pytest.approx(rec.item(), rel=1e-5)


@pytest.mark.parametrize("fn,grid", [(discretized_logistic_log_likelihood, torch.arange(256) / 255),
                                     (discretized_gaussian_log_likelihood, torch.arange(256) / 127.5 - 1)])
def test_discretised_likelihoods_sum_to_one_over_the_256_levels(fn, grid):
    for mean, log_scale in ((0.3, -2.0), (0.9, -4.0), (-0.5, 0.5)):
        lp = fn(grid[:, None], torch.full((256, 1), mean), torch.full((256, 1), log_scale))
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_iwae_bound_is_above_the_elbo_and_rises_with_k(tmp_path):
    train(get_method("vae"), _cfg("vae", steps=150), out=tmp_path / "v", verbose=False)
    m = ll.load_run(tmp_path / "v")
    x = load_dataset("digits", "test").images[:200]
    torch.manual_seed(0)
    bounds = [m.log_prob(x, torch.Generator().manual_seed(1), k=k).mean().item() for k in (1, 10, 200)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


# -- the flow ------------------------------------------------------------------------------------------------
def test_flow_inverts_and_its_log_determinant_is_the_jacobians():
    torch.manual_seed(0)
    g = Glow(1, 8, levels=2, depth=2, hidden=8).double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    g(x)                                                        # actnorm's data-dependent initialisation
    for p in g.parameters():                                     # leave the identity start (zero-init layers)
        p.data.add_(0.1 * torch.randn_like(p))
    g.eval()
    eps, logp = g(x)
    assert (g.inverse(eps) - x).abs().max().item() < 1e-5
    jac = torch.autograd.functional.jacobian(lambda v: g(v.view(1, 1, 8, 8))[0].view(-1), x[:1].reshape(-1))
    ref = (-0.5 * (math.log(2 * math.pi) + eps[0] ** 2)).sum() + torch.linalg.slogdet(jac)[1]
    assert logp[0].item() == pytest.approx(ref.item(), abs=1e-6)


def test_flow_method_log_prob_is_a_density_over_dequantised_images():
    """With the logit preprocessing included, the method's image likelihood equals log N(eps) + the log-det of
    the whole map from y to eps (jacobian by autograd), minus D log 256."""
    m = _built("flow", dataset="digits")
    m.flow.eval()
    y = m.dequantize(load_dataset("digits", "test").images[:1], torch.Generator().manual_seed(0)).double()
    m.flow.double()
    f = lambda v: m.log_density(v.view(1, 1, 8, 8))[1].view(-1)   # noqa: E731
    eps = f(y.reshape(-1))
    jac = torch.autograd.functional.jacobian(f, y.reshape(-1))
    ref = (-0.5 * (math.log(2 * math.pi) + eps ** 2)).sum() + torch.linalg.slogdet(jac)[1]
    assert m.log_density(y)[0].item() == pytest.approx(ref.item(), abs=1e-5)
    with pytest.raises(ConfigError, match="no option k"):
        m.likelihood_protocol(k=5)


# -- the diffusion model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_diffusion_forward_process_matches_its_closed_form(schedule):
    """Running q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t) step by step gives q(x_t | x_0) =
    N(sqrt(abar_t) x_0, 1 - abar_t): exactly for the moments' recursion, and by Monte Carlo for the samples."""
    m = _built("ddpm", schedule=schedule, timesteps=100)
    mean, var = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for t in range(100):
        b = m.betas[t]
        mean, var = (1 - b).sqrt() * mean, (1 - b) * var + b
        assert mean.item() == pytest.approx(m.abar[t].sqrt().item(), rel=1e-9)
        assert var.item() == pytest.approx(1 - m.abar[t].item(), rel=1e-9)
    g = torch.Generator().manual_seed(0)
    n, a = 200_000, m.abar[59].item()                      # standard errors: mean 0.0022, variance 0.0032
    x0 = torch.full((n, 1, 1, 1), 0.7)
    x = x0.clone()
    for t in range(60):
        x = (1 - m.betas[t]).sqrt().float() * x + m.betas[t].sqrt().float() * torch.randn(x.shape, generator=g)
    direct = m.q_sample(x0, torch.full((n,), 59), torch.randn(x0.shape, generator=g))
    for y in (x, direct):
        assert y.mean().item() == pytest.approx(0.7 * math.sqrt(a), abs=0.012)
        assert y.var().item() == pytest.approx(1 - a, abs=0.016)


def test_the_denoiser_overfits_one_batch():
    torch.manual_seed(0)
    m = _built("ddpm")
    x0 = m.prepare_images(load_dataset("digits", "train").images[:8]) * 2 - 1
    i, eps = torch.randint(20, (8,)), torch.randn_like(x0)
    opt = torch.optim.Adam(m.net.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(m.net(m.q_sample(x0, i, eps), i), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_ddim_with_eta_zero_is_deterministic_and_ddpm_draws_from_its_seed():
    m = _built("ddpm")
    xT = m.noise(4, torch.Generator().manual_seed(3))
    a, b = m.ddim(xT, 5, 0.0), m.ddim(xT, 5, 0.0)
    assert torch.equal(a, b)
    c = m.ddim(xT, 5, 1.0, torch.Generator().manual_seed(0))
    assert not torch.equal(a, c)
    assert torch.equal(m.sample(6, seed=2), m.sample(6, seed=2))
    m.cfg.sampler = "ddpm"
    assert m.nfe_per_sample == 20 and torch.equal(m.sample(3, seed=1), m.sample(3, seed=1))


def test_ddpm_bound_with_fewer_timesteps_estimates_the_full_sum():
    """k = T - 1 sums every KL term; k = 4 strata weighted by their sizes estimate the same mean (averaged over
    draws, within 4 standard errors of that average)."""
    m = _built("ddpm")
    x = load_dataset("digits", "test").images[:16]
    full = torch.stack([m.log_prob(x, torch.Generator().manual_seed(s), k=19).mean() for s in range(10)])
    few = torch.stack([m.log_prob(x, torch.Generator().manual_seed(100 + s), k=4).mean() for s in range(200)])
    assert torch.isfinite(full).all() and (full < 0).all()
    se = math.sqrt(few.var().item() / len(few) + full.var().item() / len(full))
    assert abs(few.mean().item() - full.mean().item()) < 4 * se, (few.mean(), full.mean(), se)
    with pytest.raises(ConfigError, match="k = 20 timesteps"):
        m.likelihood_protocol(k=20)


# -- MIG and the shapes set ------------------------------------------------------------------------------
def test_mig_is_one_for_a_disentangled_code_and_near_zero_for_a_rotation_of_it():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 5, size=(5000, 3))                     # 3 factors of 5 levels
    code = factors + 0.01 * rng.standard_normal((5000, 3))
    assert mig_score(code, factors)["mig"] == pytest.approx(1.0, abs=0.01)    # less only by the plug-in MI's bias
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert mig_score(code @ q, factors)["mig"] < 0.2
    code4 = np.concatenate([code, rng.standard_normal((5000, 1))], 1)   # a nuisance dimension changes nothing
    assert mig_score(code4, factors)["mig"] == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ConfigError, match="at least 2 code dimensions"):
        mig_score(code[:, :1], factors)


def test_shapes_render_their_factors():
    f = torch.tensor([[0, 5, 0, 8, 8], [0, 5, 10, 8, 8], [1, 0, 0, 0, 15], [2, 5, 0, 15, 0]])
    x = shapes.render(f)[:, 0].bool()                                  # (4, 32, 32)
    rows, cols = x[0].any(1).nonzero().squeeze(1), x[0].any(0).nonzero().squeeze(1)
    side = 2 * 0.8 * 0.18 * 32                                        # the square's side in pixels at scale 1
    assert abs(len(rows) - side) <= 1 and abs(len(cols) - side) <= 1
    assert x[0].sum() == len(rows) * len(cols)                          # axis-aligned at orientation 0: a block
    assert torch.equal(x[0], x[1])                                      # a quarter turn (10 of 40) of a square
    assert x[2].nonzero().float().mean(0).tolist()[1] < 16 < x[2].nonzero().float().mean(0).tolist()[0]  # left, low
    assert x[3].sum() < x[0].sum()                                      # a triangle covers less than its square
    ds = load_dataset("shapes", "test")
    assert ds.images.shape == (10_000, 1, 32, 32) and set(ds.images.unique().tolist()) == {0, 255}
    assert ds.fields["factors"].shape == (10_000, 5) and torch.equal(ds.labels, ds.fields["factors"][:, 0])
    assert torch.equal(shapes.render(ds.fields["factors"][:5]), ds.images[:5])


def test_vae_mig_on_shapes_and_what_has_no_encoder(tmp_path):
    train(get_method("vae"), _cfg("vae", dataset="shapes", max_train=512, steps=20, z_dim=6), out=tmp_path / "v",
          verbose=False)
    res = ll.load(tmp_path / "v").evaluate("mig", n=2000, save=False)
    assert 0 <= res.metrics["mig"] <= 1 and res.protocol["code_dims"] == 6
    assert set(k for k in res.metrics if k.startswith("mig_")) == {f"mig_{f}" for f in shapes.FACTORS}
    from latentlab.eval.disentangle import mig
    with pytest.raises(ConfigError, match="no known factors"):
        mig(_built("vae"))
    gan = get_method("gan2d")(resolve_config(get_method("gan2d").Config, "gan2d", None, {"dataset": "ring8"}))
    with pytest.raises(ConfigError, match="no encoder"):
        mig(gan)


# -- the methods end to end -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["vae", "flow", "ddpm"])
def test_resume_is_exact(tmp_path, method):
    extra = {"ddpm": dict(ema_decay=0.9)}.get(method, {})
    train(get_method(method), _cfg(method, steps=6, **extra), out=tmp_path / "a", verbose=False)
    train(get_method(method), _cfg(method, steps=3, **extra), out=tmp_path / "b", verbose=False)
    train(get_method(method), _cfg(method, steps=6, **extra), resume=tmp_path / "b", verbose=False)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


@pytest.mark.parametrize("method", ["vae", "flow", "ddpm"])
def test_cli_trains_samples_interpolates_and_reports_its_likelihood(tmp_path, method, capsys):
    import json
    run_dir = tmp_path / method
    over = {**COMMON, **TINY[method], "steps": 4, "eval_at_end": False}
    assert main(["train", method, "--out", str(run_dir), *[f"{k}={v}" for k, v in over.items()]]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--protocol", "likelihood", "--option", "n=40", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["bits_per_dim"] > 0 and "estimate" in printed["protocol"]
    res = json.loads((run_dir / "eval_likelihood.json").read_text())
    assert res["metrics"]["bits_per_dim"] > 0 and res["protocol"]["n"] == 40 and "estimate" in res["protocol"]
    run = ll.load(run_dir)
    x = run.sample(5, seed=1)
    assert x.shape == (5, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    walk, how = run.method.interpolate(3, 5, seed=0)
    assert walk.shape == (3, 5, 1, 8, 8) and "slerp" in how
    files = run.method.on_train_end(run_dir)
    assert all((run_dir / p).exists() for p in files.values())
    assert main(["eval", str(run_dir), "--protocol", "modes"]) == 2


@needs("mnist")
def test_interpolation_protocol_reads_the_walks(tmp_path, featurenet_cache):
    train(get_method("vae"), _cfg("vae", dataset="mnist", max_train=512, steps=30), out=tmp_path / "v", verbose=False)
    res = ll.load(tmp_path / "v").evaluate("interpolation", pairs=10, steps=5, save=False)
    m = res.metrics
    assert m["path_length_ratio"] >= 1 - 1e-9 and 1 / 4 - 1e-9 <= m["max_step_share"] <= 1
    assert 0 <= m["midpoint_confident"] <= 1 and "slerp" in res.protocol["walks"]
    with pytest.raises(ConfigError, match="odd number"):
        ll.load(tmp_path / "v").evaluate("interpolation", steps=4, save=False)

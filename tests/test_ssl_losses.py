"""Self-supervised losses against hand-computed references and analytic cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from latentlab.losses import (barlow_twins_loss, byol_loss, dino_center_update, dino_loss, info_nce, nce_log_normaliser,
                             nce_loss, nt_xent)


def test_info_nce_hand_computed():
    q = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[2.0, 0.0]])                 # cosine 1 after normalisation
    neg = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])    # cosines 0 and -1
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0) + math.exp(-1 / tau)))
    assert info_nce(q, pos, neg, tau).item() == pytest.approx(expected, rel=1e-6)
    # per-query negatives (B, K, D) give the same value as shared (K, D)
    assert info_nce(q, pos, neg[None], tau).item() == pytest.approx(expected, rel=1e-6)
    # without normalisation the raw dot products are the logits
    raw = -math.log(math.exp(2 / tau) / (math.exp(2 / tau) + 1 + math.exp(-1 / tau)))
    assert info_nce(q, pos, neg, tau, normalize=False).item() == pytest.approx(raw, rel=1e-6)


def test_info_nce_more_negatives_raise_the_loss_and_bad_inputs():
    torch.manual_seed(0)
    q, p = torch.randn(8, 16), torch.randn(8, 16)
    n = torch.randn(64, 16)
    assert info_nce(q, p, n[:4]) < info_nce(q, p, n)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(q, p, n, temperature=0)
    with pytest.raises(ValueError, match="negatives"):
        info_nce(q, p, torch.randn(4, 3))


def test_nce_loss_hand_computed():
    """NPID Eq. 5-7: P = exp(s/tau)/Z, h = P / (P + K/n); L = -log h(pos) - sum log(1 - h(neg))."""
    q = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[2.0, 0.0]])                 # cosine 1
    neg = torch.tensor([[0.0, 3.0], [-1.0, 0.0]])    # cosines 0 and -1
    tau, n, z = 0.5, 10, 3.0
    noise = 2 / n                                    # K P_n
    h = lambda s: (math.exp(s / tau) / z) / (math.exp(s / tau) / z + noise)
    expected = -math.log(h(1.0)) - math.log(1 - h(0.0)) - math.log(1 - h(-1.0))
    assert nce_loss(q, pos, neg, n, math.log(z), tau).item() == pytest.approx(expected, rel=1e-6)
    assert nce_loss(q, pos, neg[None], n, math.log(z), tau).item() == pytest.approx(expected, rel=1e-6)
    # Z's Monte-Carlo estimate: n * mean of exp(s / tau) over the 1 + K pairs
    est = math.log(n * (math.exp(2) + 1 + math.exp(-2)) / 3)
    assert nce_log_normaliser(q, pos, neg, n, tau) == pytest.approx(est, rel=1e-6)


def test_nce_loss_gradcheck_and_behaviour():
    torch.manual_seed(0)
    q = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    p, neg = torch.randn(3, 5, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q: nce_loss(q, p, neg, 100, 1.3, 0.2), (q,))
    # a query equal to its positive and opposite to every negative has a smaller loss than a random one
    good = nce_loss(p, p, -p[:1].expand(7, 5), 100, 0.0, 0.2)
    assert good < nce_loss(q.detach(), p, neg, 100, 0.0, 0.2)
    with pytest.raises(ValueError, match="n_data"):
        nce_loss(q, p, neg, 0)
    with pytest.raises(ValueError, match="negatives"):
        nce_loss(q, p, torch.randn(4, 3), 10)


def _nt_xent_reference(z1, z2, tau):
    """Eq. 1 of SimCLR written out with loops: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t)."""
    z = torch.cat([z1, z2]).double()
    n2 = len(z)
    s = [[float(F.cosine_similarity(z[i], z[k], dim=0)) for k in range(n2)] for i in range(n2)]
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        den = sum(math.exp(s[i][k] / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(s[i][j] / tau) / den)
    return total / n2


def test_nt_xent_matches_loop_reference():
    torch.manual_seed(1)
    z1, z2 = torch.randn(5, 7), torch.randn(5, 7)
    for tau in (0.1, 0.5, 1.0):
        assert nt_xent(z1, z2, tau).item() == pytest.approx(_nt_xent_reference(z1, z2, tau), rel=1e-5)


@pytest.mark.parametrize("n,tau", [(2, 0.5), (4, 0.1), (16, 1.0)])
def test_nt_xent_identical_embeddings_is_log_2n_minus_1(n, tau):
    z = torch.ones(n, 3)
    assert nt_xent(z, z.clone(), tau).item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_nt_xent_perfect_pairs_go_to_zero_and_gradcheck():
    z = torch.eye(4)
    assert nt_xent(z, z.clone(), 0.01).item() < 1e-6
    a = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: nt_xent(x, y, 0.5), (a, b))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent(torch.randn(1, 4), torch.randn(1, 4))


def test_byol_loss_analytic():
    z = torch.randn(6, 8)
    assert byol_loss(2 * z, z).item() == pytest.approx(0.0, abs=1e-6)         # aligned: 0
    assert byol_loss(-z, z).item() == pytest.approx(4.0, rel=1e-6)             # opposite: 4
    e = torch.eye(2)
    assert byol_loss(e[:1], e[1:]).item() == pytest.approx(2.0, rel=1e-6)     # orthogonal: 2
    p = torch.randn(6, 8, requires_grad=True)
    zz = torch.randn(6, 8, requires_grad=True)
    byol_loss(p, zz).backward()
    assert zz.grad is None and p.grad is not None                              # target gets no gradient


def _barlow_reference(z1, z2, lambd):
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    b = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(float(a[k, i] * b[k, j]) for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lambd * c ** 2
    return loss


def test_barlow_twins_matches_reference_and_identity_case():
    torch.manual_seed(2)
    z1, z2 = torch.randn(6, 3), torch.randn(6, 3)
    assert barlow_twins_loss(z1, z2, 0.3, eps=0).item() == pytest.approx(_barlow_reference(z1, z2, 0.3), rel=1e-5)
    # decorrelated, standardised columns fed twice: C = I, loss 0
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(z, z, 5e-3, eps=0).item() == pytest.approx(0.0, abs=1e-6)
    # two identical columns: C_01 = 1 costs lambda * 2
    zz = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(zz, zz, 0.5, eps=0).item() == pytest.approx(1.0, rel=1e-6)


def test_dino_loss_reference_and_uniform_teacher():
    torch.manual_seed(3)
    k = 5
    s = [torch.randn(4, k) for _ in range(3)]
    t = [torch.randn(4, k) for _ in range(2)]
    center = torch.randn(1, k)
    ref, pairs = 0.0, 0
    for ti in range(2):
        pt = torch.softmax((t[ti] - center) / 0.04, -1)
        for si in range(3):
            if si != ti:
                ref += float((-(pt * torch.log_softmax(s[si] / 0.1, -1)).sum(-1)).mean())
                pairs += 1
    assert pairs == 4
    assert dino_loss(s, t, center, 0.1, 0.04).item() == pytest.approx(ref / pairs, rel=1e-5)
    # a uniform teacher and a uniform student: cross-entropy log K
    z = [torch.zeros(2, k)] * 2
    assert dino_loss(z, z, torch.zeros(1, k)).item() == pytest.approx(math.log(k), rel=1e-6)
    # centre update is the EMA of the teacher batch mean
    c = dino_center_update(torch.zeros(1, k), [torch.ones(2, k), 3 * torch.ones(2, k)], 0.9)
    assert torch.allclose(c, torch.full((1, k), 0.2))

"""Domain adaptation and learning by moving: the reversal layer, the schedules, the losses and validators against
hand-computed values, the digit networks, exact two-stream resume of every method, selection rules that never read
target labels, the egomotion pairs' stated motion, and the held-out measures of the two motion pretext tasks."""

from __future__ import annotations

import math

import pytest
import torch

from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.errors import ConfigError
from latentlab.eval.domain import entropy_score, im_score, selected_row, snd_score
from latentlab.losses.domain import (cdan_entropy_weights, classifier_discrepancy, domain_adversarial_loss, entropy,
                                     multilinear_map)
from latentlab.methods import get_method
from latentlab.methods._domain import COLUMNS, adaptation_factor, annealed_lr_factor
from latentlab.nets.domain import RandomizedMultilinear, grad_reverse
from conftest import needs
from helpers import assert_same_weights, weights

DA_METHODS = ("source_only", "dann", "cdan", "mcd", "oracle")


# -- reversal layer and schedules --------------------------------------------------------------------------
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward(lam):
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = grad_reverse(x, lam)
    assert torch.equal(y, x)
    w = torch.randn(4, 5, dtype=torch.float64)
    (g,) = torch.autograd.grad((w * y).sum(), x)
    assert torch.allclose(g, -lam * w)
    jac = torch.autograd.functional.jacobian(lambda t: grad_reverse(t, lam), torch.randn(3, dtype=torch.float64))
    assert torch.allclose(jac, -lam * torch.eye(3, dtype=torch.float64))


def test_dann_schedules_against_hand_computed_values():
    assert adaptation_factor(0.0) == 0.0
    assert adaptation_factor(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1) == pytest.approx(0.986614, abs=1e-6)
    assert adaptation_factor(1.0) == pytest.approx(0.999909, abs=1e-6)
    assert annealed_lr_factor(0.0) == 1.0
    assert annealed_lr_factor(0.1) == pytest.approx(2 ** -0.75) == pytest.approx(0.594604, abs=1e-6)
    assert annealed_lr_factor(1.0) == pytest.approx(11 ** -0.75) == pytest.approx(0.165560, abs=1e-6)


@needs("mnist")
@needs("usps")
def test_dann_runs_the_schedules_it_states(tmp_path):
    from latentlab.engine.logging import read_metrics
    train(get_method("dann"), _cfg("dann", steps=4), out=tmp_path / "r", verbose=False)
    rows = [r for r in read_metrics(tmp_path / "r") if "lambda" in r]
    assert [r["lambda"] for r in rows] == pytest.approx([adaptation_factor(s / 4) for s in range(4)])
    sched = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["method"]["schedulers"]["model"]
    lr = get_method("dann").Config().lr
    assert sched["_last_lr"][0] == pytest.approx(lr * annealed_lr_factor(3 / 4))        # the last step's rate


# -- losses -------------------------------------------------------------------------------------------
def test_domain_adversarial_loss_by_hand():
    z = torch.zeros(3)
    assert domain_adversarial_loss(z, z).item() == pytest.approx(math.log(2))
    ds, dt = torch.tensor([2.0]), torch.tensor([-1.0, 3.0])
    bce = [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(3))]
    assert domain_adversarial_loss(ds, dt).item() == pytest.approx(sum(bce) / 3)
    ws, wt = torch.tensor([1.0]), torch.tensor([0.0, 3.0])
    assert domain_adversarial_loss(ds, dt, ws, wt).item() == pytest.approx((bce[0] + 3 * bce[2]) / 4)
    with pytest.raises(ValueError, match="both domains"):
        domain_adversarial_loss(ds, dt, ws, None)


def test_multilinear_map_and_its_randomised_estimate():
    f, g = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.5, -1.0]])
    assert multilinear_map(f, g).tolist() == [[0.5, 1.0, 1.5, -1.0, -2.0, -3.0]]
    # T(f, g) = (R_f f) * (R_g g) / sqrt(d) preserves inner products in expectation: <T, T'> ~ <f, f'><g, g'>
    torch.manual_seed(0)
    f, g = torch.randn(2, 6, dtype=torch.float64), torch.rand(2, 4, dtype=torch.float64).softmax(1)
    t = RandomizedMultilinear(6, 4, out_dim=200_000, seed=1).double()(f, g)
    h = multilinear_map(f, g)
    assert (t[0] @ t[1]).item() == pytest.approx((h[0] @ h[1]).item(), abs=0.05 * (h[0].norm() * h[1].norm()).item())


def test_cdan_entropy_weights_by_hand():
    uniform, onehot = torch.full((2, 4), 0.25), torch.eye(4)[:3]
    assert entropy(uniform).tolist() == pytest.approx([math.log(4)] * 2)
    ws, wt = cdan_entropy_weights(uniform, onehot)
    assert ws.tolist() == pytest.approx([0.5, 0.5]) and wt.tolist() == pytest.approx([1 / 3] * 3)
    mixed = torch.stack([uniform[0], onehot[0]])
    w, _ = cdan_entropy_weights(mixed, mixed)
    raw = torch.tensor([1 + 0.25, 2.0])                           # 1 + exp(-log 4), 1 + exp(0)
    assert w.tolist() == pytest.approx((raw / raw.sum()).tolist(), abs=1e-6)


def test_classifier_discrepancy_by_hand():
    p1, p2 = torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert classifier_discrepancy(p1, p2).item() == pytest.approx(0.5)
    assert classifier_discrepancy(p1, p1).item() == 0.0


# -- validators ------------------------------------------------------------------------------------------
def test_validators_on_hand_made_predictions():
    k = 4
    confident_balanced = torch.eye(k).repeat(5, 1)
    collapsed = torch.eye(k)[[0] * 20]
    uniform = torch.full((20, k), 1 / k)
    assert entropy_score(confident_balanced) == pytest.approx(0, abs=1e-6)
    assert entropy_score(uniform) == pytest.approx(-math.log(k))
    assert im_score(confident_balanced) == pytest.approx(math.log(k), abs=1e-6)
    assert im_score(collapsed) == pytest.approx(0, abs=1e-6) and im_score(uniform) == pytest.approx(0, abs=1e-6)
    # SND against its definition written out: softmax over j != i of cos(p_i, p_j) / T, mean entropy
    torch.manual_seed(0)
    p = torch.rand(7, 3, dtype=torch.float64).softmax(1)
    z = p / p.norm(dim=1, keepdim=True)
    ref = 0.0
    for i in range(7):
        s = torch.stack([z[i] @ z[j] / 0.05 for j in range(7) if j != i])
        q = s.softmax(0)
        ref += -(q * q.log()).sum().item() / 7
    assert snd_score(p, chunk=3) == pytest.approx(ref, rel=1e-9)
    # identical predictions: each row's neighbours are equally similar, entropy log(N - 1)
    assert snd_score(torch.eye(3)[[1] * 6]) == pytest.approx(math.log(5))


def test_selected_row_takes_the_earliest_best_and_never_nan():
    h = torch.tensor([[0, 1.0], [1, 3.0], [2, float("nan")], [3, 3.0]], dtype=torch.float64)
    assert selected_row(h, 1) == 1
    assert selected_row(h[:0], 1) == -1
    assert selected_row(torch.full((2, 2), float("nan")), 1) == -1


# -- methods ---------------------------------------------------------------------------------------------
def _cfg(method, **kw):
    base = dict(source="mnist", target="usps", steps=6, batch_size=16, source_samples=256, target_samples=256,
                val_every=2, val_samples=64, log_every=1, ckpt_every=0, image_every=0, tsne_samples=0,
                eval_batch_size=256)
    return resolve_config(get_method(method).Config, method, None, {**base, **kw})


@needs("mnist")
@needs("usps")
@pytest.mark.parametrize("method", DA_METHODS)
def test_every_method_trains_and_resumes_both_streams_exactly(tmp_path, method):
    """The schedules run over ``steps``, so the interrupted run is the same 6-step run resumed from its step-3
    checkpoint (both streams' positions, the history and the selected copy are in it)."""
    import json
    import shutil
    a = train(get_method(method), _cfg(method, ckpt_every=3), out=tmp_path / "a", verbose=False)
    b_dir = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b_dir)
    shutil.copy(b_dir / "checkpoints" / "step_0000003.ckpt", b_dir / "checkpoints" / "last.ckpt")
    rows = (b_dir / "metrics.jsonl").read_text().splitlines()
    (b_dir / "metrics.jsonl").write_text("".join(r + "\n" for r in rows if json.loads(r)["step"] <= 3))
    b = train(get_method(method), _cfg(method, ckpt_every=3), resume=b_dir, verbose=False)
    assert b.steps == 3
    assert_same_weights(weights(tmp_path / "a"), weights(b_dir))
    ha, hb = (load_checkpoint(p / "checkpoints" / "last.ckpt")["method"]["extra"]["history"]
              for p in (tmp_path / "a", tmp_path / "b"))
    assert ha.shape == (3, len(COLUMNS)) and torch.equal(ha, hb)            # checks at steps 2, 4, 6
    assert a.eval.metrics == b.eval.metrics
    m = a.eval.metrics
    assert {"target_test@source_val", "target_test@im", "target_test@snd", "target_test@entropy",
            "target_test@oracle", "target_test@last", "test_accuracy"} <= set(m)
    assert m["target_test@oracle"] >= max(m[f"target_test@{r}"] for r in ("source_val", "entropy", "im", "snd"))
    assert "reads target labels" in a.eval.protocol["selection"]


@needs("mnist")
@needs("usps")
@pytest.mark.parametrize("method", ["dann", "mcd"])
def test_label_free_rules_never_read_target_labels(tmp_path, method, monkeypatch):
    """The same run with every target label changed (train and test) selects the same checkpoint under every
    label-free rule; only the target test column (and with it the oracle figure) changes."""
    a = train(get_method(method), _cfg(method, steps=8), out=tmp_path / "a", verbose=False)
    import latentlab.methods._domain as dom
    real = dom.load_dataset

    def shuffled(name, split, data_dir=None, **kw):
        ds = real(name, split, data_dir, **kw)
        if name == "usps":
            ds.fields["label"] = (ds.labels + 1) % 10                          # every label wrong
        return ds
    monkeypatch.setattr(dom, "load_dataset", shuffled)
    b = train(get_method(method), _cfg(method, steps=8), out=tmp_path / "b", verbose=False)
    for rule in ("source_val", "entropy", "im", "snd"):
        assert a.eval.metrics[f"step@{rule}"] == b.eval.metrics[f"step@{rule}"]
    ha, hb = (load_checkpoint(p / "checkpoints" / "last.ckpt")["method"]["extra"]["history"]
              for p in (tmp_path / "a", tmp_path / "b"))
    tt = COLUMNS.index("target_test")
    assert torch.equal(torch.cat([ha[:, :tt], ha[:, tt + 1:]], 1), torch.cat([hb[:, :tt], hb[:, tt + 1:]], 1))
    assert not torch.equal(ha[:, tt], hb[:, tt])                             # the labels did change
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))


@needs("mnist")
@needs("usps")
def test_oracle_trains_on_the_target_and_source_only_sees_no_target_image(tmp_path):
    from latentlab.methods import get_method as gm
    o = gm("oracle")(_cfg("oracle"))
    assert o.source_train.name == "usps" and "target" not in o.batches(0, 1).streams
    s = gm("source_only")(_cfg("source_only"))
    assert s.source_train.name == "mnist" and "target" not in s.batches(0, 1).streams
    d = gm("dann")(_cfg("dann"))
    batch = next(d.batches(0, 1))
    assert set(batch) == {"source", "target"} and set(batch["target"]) == {"x"}    # no target label streamed
    assert d.shape == (1, 28, 28) and batch["target"]["x"].shape == (16, 1, 28, 28)


@needs("mnist")
@needs("mnist_m")
def test_mnist_to_mnist_m_uses_the_dann_network_on_rgb(tmp_path):
    m = get_method("dann")(_cfg("dann", target="mnist_m"))
    assert m.shape == (3, 28, 28) and type(m.backbone).__name__ == "DANNDigits" and m.backbone.num_features == 768
    assert m.source_train.images.shape[1:] == (3, 28, 28)
    x = m.source_train.images[:4]
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])       # grey repeated to RGB


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="'dataset'"):
        _cfg("dann", dataset="mnist")
    with pytest.raises(ConfigError, match="'net'"):
        _cfg("dann", net="nope")
    with pytest.raises(ConfigError, match="'selection'"):
        _cfg("cdan", selection="target_test")


def test_optimize_with_two_optimizers_steps_both_from_one_backward():
    from latentlab.engine.method import Method

    class Fab:
        def backward(self, loss):
            loss.backward()
    m = Method.__new__(Method)
    m.step, m.fabric = 0, Fab()
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    m.optimizers = {"a": torch.optim.SGD([a], lr=0.1), "b": torch.optim.SGD([b], lr=0.1)}
    a.grad, b.grad = torch.full((1,), 5.0), torch.full((1,), 5.0)            # stale gradients are cleared first
    m.optimize(("a", "b"), (2 * a + 3 * b).sum())
    assert a.item() == pytest.approx(0.8) and b.item() == pytest.approx(0.7)


# -- learning to see by moving ------------------------------------------------------------------------------
def _blob(size: int = 28) -> torch.Tensor:
    """A smooth asymmetric pattern well inside the canvas: uint8 (1, 1, S, S)."""
    r, c = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    img = torch.exp(-((r - 11) ** 2 + (c - 14) ** 2) / 12) + 0.6 * torch.exp(-((r - 15) ** 2 + (c - 17) ** 2) / 5)
    return (255 * img / img.max()).round().to(torch.uint8)[None, None]


def test_egomotion_pairs_have_the_stated_motion():
    from kornia.geometry.transform import invert_affine_transform
    from latentlab.data.egomotion import motion_matrix, motion_pairs, warp
    x = _blob().repeat(16, 1, 1, 1)
    p = motion_pairs(x, generator=torch.Generator().manual_seed(0))
    tx, ty, theta = p["motion"].unbind(1)
    assert p["labels"][:, 0].tolist() == (tx + 3).long().tolist() and p["labels"][:, 1].tolist() == (ty + 3).long().tolist()
    assert ((theta >= -30) & (theta < 30)).all() and p["labels"][:, 2].tolist() == ((theta + 30) // 3).long().tolist()
    assert p["labels"][:, :2].min() >= 0 and p["labels"][:, :2].max() <= 6 and p["labels"][:, 2].max() <= 19
    # undo the stated motion: the second view comes back to the first (bilinear twice: small differences)
    back = warp(p["second"].float(), invert_affine_transform(motion_matrix(theta, tx, ty, 28)))
    err = (back - x.float()).abs()[..., 4:-4, 4:-4]
    assert err.max() < 40 and err.mean() < 2.5
    wrong = warp(p["second"].float(), invert_affine_transform(motion_matrix(-theta, -tx, ty + 2, 28)))
    assert (wrong - x.float()).abs()[..., 4:-4, 4:-4].mean() > 4 * err.mean()
    # a pure whole-pixel shift is exact: dst[y, x] = src[y - ty, x - tx]
    shifted = warp(x[:1].float(), motion_matrix(torch.zeros(1), torch.tensor([2]), torch.tensor([-1]), 28))
    assert torch.allclose(shifted[0, 0, 5:20, 5:20], x[0, 0, 6:21, 3:18].float(), atol=1e-3)
    # counter-clockwise on screen: a point right of the centre goes up
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 7] = 1
    up = warp(dot, motion_matrix(torch.tensor([90.0]), torch.zeros(1), torch.zeros(1), 9))
    assert up[0, 0].argmax().item() == 1 * 9 + 4


def test_temporal_order_and_egomotion_measure_their_task_on_held_out_images(tmp_path):
    from latentlab.engine.logging import read_metrics
    kw = dict(dataset="digits", steps=2, batch_size=16, width=4, num_features=8, knn_every=2, knn_samples=32,
              log_every=1, ckpt_every=0, image_every=0, eval_at_end=False)
    for method, key, extra in (("temporal_order", "order_heldout", dict(eval_clips=40, hidden=8)),
                               ("egomotion", "motion_rotation", dict(eval_pairs=40, hidden=8))):
        cfg = resolve_config(get_method(method).Config, method, None, {**kw, **extra})
        train(get_method(method), cfg, out=tmp_path / method, verbose=False)
        rows = [r for r in read_metrics(tmp_path / method) if key in r]
        assert rows and 0 <= rows[-1][key] <= 100
        from latentlab.api import load_run
        m = load_run(tmp_path / method)
        protocol = "order" if method == "temporal_order" else "motion"
        a, b = m.evaluate(protocol).metrics, m.evaluate(protocol).metrics       # fixed held-out clips / pairs
        assert a == b and a[key] == pytest.approx(rows[-1][key])

"""Multi-task learning and transfer: the weightings on toys with known answers, the generated multi-target sets
on hand-made cases, the multitask method (every weighting, head placement, frozen readouts, exact resume) and
the finetune method (what each mode trains)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from latentlab.config import resolve_config
from latentlab.data import load_dataset
from latentlab.data import multitask as mt
from latentlab.engine import train
from latentlab.errors import ConfigError
from latentlab.eval.multitask import metric
from latentlab.losses.multitask import (gradient_normalizers, gradnorm_loss, gradnorm_renormalise, min_norm_weights,
                                        pcgrad, task_loss, uncertainty_weighted)
from latentlab.methods import get_method
from latentlab.nets.multitask import MultiTaskNet
from conftest import needs
from helpers import assert_same_weights, weights


# -- the weightings ----------------------------------------------------------------------------------------
def _brute_min_norm(g: torch.Tensor, steps: int = 200) -> float:
    """min over a grid of the simplex of ||sum a_i g_i|| (2 or 3 tasks)."""
    best = math.inf
    grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    for a in grid:
        rest = [1 - a] if len(g) == 2 else [b for b in grid if b <= 1 - a]
        for b in rest:
            w = torch.tensor([a, b] if len(g) == 2 else [a, b, 1 - a - b], dtype=torch.float64)
            best = min(best, (w @ g.double()).norm().item())
    return best


def test_min_norm_weights_two_tasks_closed_form():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    a = min_norm_weights(g)
    # a1 = <g2 - g1, g2> / ||g1 - g2||^2 = 4 / 5
    assert torch.allclose(a, torch.tensor([0.8, 0.2]), atol=1e-6)
    assert (a @ g).norm().item() == pytest.approx(_brute_min_norm(g), abs=1e-3)
    # one gradient inside the other's direction: the shorter one alone (a vertex of the simplex)
    assert torch.allclose(min_norm_weights(torch.tensor([[1.0, 0.0], [3.0, 0.0]])), torch.tensor([1.0, 0.0]))
    # opposite gradients: the point 0 of the segment
    a = min_norm_weights(torch.tensor([[2.0, 0.0], [-1.0, 0.0]]))
    assert (a @ torch.tensor([[2.0, 0.0], [-1.0, 0.0]])).norm().item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_min_norm_weights_three_tasks_match_brute_force(seed):
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(seed))
    a = min_norm_weights(g)
    assert a.min() >= -1e-9 and a.sum().item() == pytest.approx(1)
    assert (a @ g).norm().item() <= _brute_min_norm(g) + 1e-3


def test_gradient_normalizers():
    g, l = torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([0.5, 2.0])
    assert torch.allclose(gradient_normalizers(g, l, "l2"), torch.tensor([5.0, 2.0]))
    assert torch.allclose(gradient_normalizers(g, l, "loss+"), torch.tensor([2.5, 4.0]))
    assert torch.allclose(gradient_normalizers(g, l, "none"), torch.ones(2))
    with pytest.raises(ValueError, match="unknown normalization"):
        gradient_normalizers(g, l, "max")


def test_pcgrad_projects_conflicts_and_leaves_agreement():
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])                  # g1 . g2 = -1 < 0
    # g1' = g1 + 0.5 g2 = (0.5, 0.5), g2' = g2 + g1 = (0, 1)
    assert torch.allclose(pcgrad(g), torch.tensor([0.5, 1.5]))
    agree = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    assert torch.allclose(pcgrad(agree), agree.sum(0))
    # after surgery no task's projected gradient points against the other's original gradient
    for seed in range(5):
        h = torch.randn(2, 6, generator=torch.Generator().manual_seed(seed))
        out = h.clone()
        for i, j in ((0, 1), (1, 0)):
            d = h[i] @ h[j]
            out[i] = h[i] - (d / (h[j] @ h[j])) * h[j] if d < 0 else h[i]
            assert out[i] @ h[j] >= -1e-5
        assert torch.allclose(pcgrad(h), out.sum(0), atol=1e-6)


def test_uncertainty_weighting_learns_log_of_each_loss():
    """For fixed task losses L_i, Kendall et al.'s objective is minimised at s_i = log L_i."""
    L = torch.tensor([0.25, 4.0])
    s = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([s], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        uncertainty_weighted(L, s).backward()
        opt.step()
    assert torch.allclose(s.detach(), L.log(), atol=1e-2)
    assert uncertainty_weighted(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(1.0)


def test_gradnorm_equalises_weighted_gradient_norms():
    """Equal training rates (r_i = 1): GradNorm drives w_i ||grad L_i|| to a common value, so w is proportional
    to 1 / ||grad L_i||; with T = 2 and norms 1 and 4 that is w = (1.6, 0.4)."""
    norms = torch.tensor([1.0, 4.0])
    w = torch.ones(2, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.01)
    for _ in range(3000):
        opt.zero_grad()
        gradnorm_loss(w * norms, torch.ones(2), alpha=1.5).backward()
        opt.step()
        gradnorm_renormalise(w.data)
    assert torch.allclose(w.detach(), torch.tensor([1.6, 0.4]), atol=0.02)
    # a task that trains slower (higher L(t)/L(0)) gets a larger target norm with alpha > 0
    lg = gradnorm_loss(torch.ones(2, requires_grad=True), torch.tensor([1.0, 3.0]), alpha=1.0)
    assert lg.item() == pytest.approx(abs(1 - 0.5) + abs(1 - 1.5))


def test_task_losses_by_hand():
    assert task_loss("regress", torch.tensor([[1.0]]), torch.tensor([4.0]), scale=2.0).item() == pytest.approx(1.0)
    img = torch.full((1, 1, 2, 2), 0.5)
    assert task_loss("image", img, torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)).item() == pytest.approx(0.5)
    pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])                              # two points (0, 0), (1, 1)
    target = torch.tensor([[[0.0, 0.0], [3.0, 3.0]]])
    # only the second point counts: ((1 - 3)^2 + (1 - 3)^2) / 2 coordinates
    assert task_loss("keypoints", pred, target, mask=torch.tensor([[0.0, 1.0]])).item() == pytest.approx(4.0)
    assert task_loss("keypoints", pred, target, mask=torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0)
    spec = mt.TaskSpec("keypoints", "keypoints", 4, "NME %", False)
    # the true box is 3 x 3: the visible point is sqrt(8) away -> 100 sqrt(8) / 3 %
    assert metric(spec, pred, target, torch.tensor([[0.0, 1.0]])) == pytest.approx(100 * math.sqrt(8) / 3, rel=1e-5)


# -- the generated sets --------------------------------------------------------------------------------------
def test_multi_mnist_layout_on_hand_made_digits():
    left = np.zeros((1, 28, 28), np.uint8)
    right = np.zeros((1, 28, 28), np.uint8)
    left[0, 0, 0] = 200                 # canvas (0, 0) -> resized (0, 0)
    right[0, 26, 26] = 255              # canvas (32, 32) -> resized (25, 25): floor((25 + 0.5) * 36 / 28) = 32
    left[0, 19, 19], right[0, 13, 13] = 100, 180    # the same canvas pixel (19, 19): max -> 180; resized 15
    out = mt.overlay(left, right)
    assert out.shape == (1, 28, 28)
    assert out[0, 0, 0] == 200 and out[0, 25, 25] == 255 and out[0, 15, 15] == 180
    assert int((out > 0).sum()) == 3


@needs("mnist")
def test_generated_sets_are_deterministic_and_labelled(shared_data):
    a = mt.multi_mnist(shared_data, "test")
    b = mt.multi_mnist(shared_data, "test")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    mn = load_dataset("mnist", "test", shared_data)
    assert np.array_equal(a["label"], mn.labels.numpy())
    t1 = mt.digit_tasks(shared_data, "test", n=64)
    t2 = mt.digit_tasks.__wrapped__(shared_data, "test", n=64)              # not from the cache
    assert all(np.array_equal(t1[k], t2[k]) for k in t1)
    assert np.array_equal(t1["parity"], t1["label"] % 2) and set(np.unique(t1["thickness"])) <= {0, 1, 2}
    assert np.abs(t1["angle"]).max() <= mt.ANGLE_RANGE


def test_rotation_angle_and_position_on_a_bar():
    """A horizontal bar rotated by the stated angle: at 90 degrees it is vertical, centred where placed."""
    bar = torch.zeros(1, 1, 28, 28)
    bar[..., 13:15, 4:24] = 1
    flat = mt.place(bar, torch.tensor([0.0]), torch.tensor([[16.0, 16.0]]), 32, digit_px=28)[0, 0]
    up = mt.place(bar, torch.tensor([90.0]), torch.tensor([[12.0, 20.0]]), 32, digit_px=28)[0, 0]
    ys, xs = (flat > 0.5).nonzero().T.float()
    assert xs.max() - xs.min() > 15 and ys.max() - ys.min() < 4
    ys, xs = (up > 0.5).nonzero().T.float()
    assert ys.max() - ys.min() > 15 and xs.max() - xs.min() < 4
    w = up.flatten() / up.sum()
    cy, cx = (torch.arange(32.0)[:, None] + 0.5).expand(32, 32).flatten() @ w, \
        (torch.arange(32.0)[None, :] + 0.5).expand(32, 32).flatten() @ w
    assert cx.item() == pytest.approx(12.0, abs=0.3) and cy.item() == pytest.approx(20.0, abs=0.3)
    # the sense of rotation: +45 degrees turns the bar's right end up on the screen (counter-clockwise)
    diag = mt.place(bar, torch.tensor([45.0]), torch.tensor([[16.0, 16.0]]), 32, digit_px=28)[0, 0]
    assert diag[6:14, 18:26].sum() > 5 and diag[6:14, 6:14].sum() < 0.5


def test_pose_keypoints_visibility_and_warp_agree():
    pose, scale, shift = torch.zeros(1, 3), torch.ones(1), torch.zeros(1, 2)
    H = mt.homography(pose, scale, shift)
    assert torch.allclose(mt.project(H, mt.TEMPLATE)[0], mt.TEMPLATE + 16, atol=1e-5)  # frontal: template + centre
    # a pixel drawn at a template point lands at its projected keypoint under any pose
    for p in ([30.0, -20.0, 40.0], [-45.0, 25.0, -30.0]):
        H = mt.homography(torch.tensor([p]), torch.tensor([1.0]), torch.tensor([[2.0, -1.0]]))
        dot = torch.zeros(1, 1, 28, 28)
        dot[..., 14 - 9 - 1:14 - 9 + 1, 14 + 9 - 1:14 + 9 + 1] = 1              # around template point (9, -9)
        img = mt.warp(dot, H)[0, 0]
        w = img.flatten() / img.sum()
        c = torch.arange(32.0) + 0.5
        got = torch.stack([c.repeat(32) @ w, c.repeat_interleave(32) @ w])
        want = mt.project(H, mt.TEMPLATE[1:2])[0, 0]
        assert torch.allclose(got, want, atol=0.7), (got, want)
    kp = torch.tensor([[[-0.5, 10.0], [31.9, 5.0], [12.0, 12.0], [5.0, 32.0], [20.0, 20.0]]])
    box = torch.tensor([[10.0, 10.0, 15.0, 15.0]])
    assert mt.visibility(kp, box).tolist() == [[0.0, 1.0, 0.0, 0.0, 1.0]]   # off-canvas, on, occluded, off, on
    assert mt.visibility(kp, torch.zeros(1, 4)).tolist() == [[0.0, 1.0, 1.0, 0.0, 1.0]]   # no occluder


# -- the multitask network and method --------------------------------------------------------------------------
@pytest.mark.parametrize("split,shared", [("none", 0), ("conv1", 1), ("conv2", 2), ("fc", 3)])
def test_split_decides_what_is_shared(split, shared):
    net = MultiTaskNet({"a": 10, "b": 2, "img": (1, 32, 32)}, img_size=32, split=split)
    assert len(net.shared) == shared and all(len(t) == 3 - shared for t in net.tails.values())
    out = net(torch.randn(2, 1, 32, 32))
    assert out["a"].shape == (2, 10) and out["b"].shape == (2, 2) and out["img"].shape == (2, 1, 32, 32)
    assert net.forward_features(torch.randn(2, 1, 32, 32), "b").shape == (2, 50)
    assert (net.last_shared_layer() is None) == (split == "none")
    if split == "none":
        assert sum(p.numel() for p in net.shared.parameters()) == 0


def _cfg(**kw):
    base = dict(dataset="multi_mnist", steps=4, batch_size=16, val_every=2, val_samples=64, log_every=1,
                ckpt_every=0, image_every=0, eval_batch_size=256)
    return resolve_config(get_method("multitask").Config, "multitask", None, {**base, **kw})


@needs("mnist")
@pytest.mark.parametrize("weighting", ["uniform", "uncertainty", "gradnorm", "mgda_ub", "pcgrad"])
def test_every_weighting_trains_and_resumes_exactly(tmp_path, weighting):
    a = train(get_method("multitask"), _cfg(weighting=weighting, steps=6), out=tmp_path / "a", verbose=False)
    train(get_method("multitask"), _cfg(weighting=weighting, steps=3), out=tmp_path / "b", verbose=False)
    train(get_method("multitask"), _cfg(weighting=weighting, steps=6), resume=tmp_path / "b", verbose=False)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    m = a.eval.metrics
    assert {"test_left", "test_right", "val_left", "val_right"} <= set(m)
    assert "test never read" in a.eval.protocol["selection"]


@needs("mnist")
def test_mgda_ub_weights_lie_on_the_simplex_and_gradnorm_keeps_their_sum(tmp_path):
    from latentlab.engine.logging import read_metrics
    train(get_method("multitask"), _cfg(weighting="mgda_ub"), out=tmp_path / "m", verbose=False)
    rows = [r for r in read_metrics(tmp_path / "m") if "a_left" in r]
    assert rows and all(abs(r["a_left"] + r["a_right"] - 1) < 1e-5 and min(r["a_left"], r["a_right"]) >= 0
                        for r in rows)
    train(get_method("multitask"), _cfg(weighting="gradnorm"), out=tmp_path / "g", verbose=False)
    rows = [r for r in read_metrics(tmp_path / "g") if "w_left" in r]
    assert rows and all(abs(r["w_left"] + r["w_right"] - 2) < 1e-4 for r in rows)


@needs("mnist")
def test_frozen_readout_keeps_the_source_trunk(tmp_path):
    """The Taskonomy readout: a trunk trained on one task (digit_tasks 'class'), frozen, read out for another."""
    small = dict(dataset="digit_tasks", steps=3, batch_size=16, val_every=0, val_samples=32, log_every=1,
                 ckpt_every=0, image_every=0, eval_batch_size=512)
    C = get_method("multitask").Config
    train(get_method("multitask"), resolve_config(C, "multitask", None, {**small, "tasks": ["class"]}),
          out=tmp_path / "src", verbose=False)
    src = weights(tmp_path / "src")
    r = train(get_method("multitask"), resolve_config(C, "multitask", None, {
        **small, "tasks": ["denoise"], "freeze_shared": True, "train_samples": 100,
        "init_from": f"{tmp_path / 'src'}:net:shared."}), out=tmp_path / "dst", verbose=False)
    dst = weights(tmp_path / "dst")
    shared = [k for k in src if k.startswith("net.shared.")]
    assert shared and all(torch.equal(src[k], dst[k]) for k in shared)            # frozen
    assert r.eval.protocol["n_train"] == 100 and "test_denoise" in r.eval.metrics


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="'nope' is not a task of multi_mnist"):
        _cfg(tasks=["nope"])
    with pytest.raises(ConfigError, match="needs a shared trunk"):
        _cfg(weighting="pcgrad", split="none")
    with pytest.raises(ConfigError, match="one weight per task"):
        _cfg(task_weights=[1.0])
    with pytest.raises(ConfigError, match="needs two or more tasks"):
        _cfg(weighting="mgda_ub", tasks=["left"])


# -- finetune ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("src") / "sup"
    train(get_method("supervised"), resolve_config(get_method("supervised").Config, "supervised", None, dict(
        dataset="digits", steps=5, batch_size=32, width=8, num_features=16, log_every=1, ckpt_every=0,
        image_every=0)), out=d, verbose=False)
    return d


@pytest.mark.parametrize("mode", ["linear", "finetune", "scratch"])
def test_finetune_modes_train_the_right_parameters(tmp_path, source_run, mode):
    cfg = resolve_config(get_method("finetune").Config, "finetune", None, dict(
        source=str(source_run), mode=mode, dataset="digits", labels_per_class=3, steps=4, batch_size=16,
        val_every=2, val_samples=50, log_every=1, ckpt_every=0, image_every=0))
    m = get_method("finetune")(cfg)
    assert len(m.train_set) == 30 and sorted(m.train_set.labels.tolist()) == sorted(list(range(10)) * 3)
    src = {k.removeprefix("model."): v for k, v in weights(source_run).items() if k.startswith("model.")}
    start = {k: v.clone() for k, v in m.backbone.net.state_dict().items()}
    same_start = all(torch.equal(start[k], src[k]) for k in start)
    assert same_start == (mode != "scratch")                                      # scratch: re-initialised
    from latentlab.engine import make_fabric
    m.setup(make_fabric(cfg))
    x = m.prepare_images(m.train_set.images[:8])
    loss = torch.nn.functional.cross_entropy(m.head(m.features(x)), m.train_set.labels[:8])
    m.optimizers["model"].zero_grad()
    m.fabric.backward(loss)
    grads = [p.grad for p in m.backbone.parameters()]
    if mode == "linear":
        assert all(g is None for g in grads) and not any(p.requires_grad for p in m.backbone.parameters())
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert m.head.weight.grad is not None and m.head.weight.grad.abs().sum() > 0
    r = train(get_method("finetune"), cfg, out=tmp_path / "ft", verbose=False)
    after = {k.removeprefix("backbone.net."): v for k, v in weights(tmp_path / "ft").items()
             if k.startswith("backbone.net.")}
    assert all(torch.equal(after[k], src[k]) for k in src if k in after) == (mode == "linear")
    assert r.eval.protocol["labels_per_class"] == 3 and 0 <= r.eval.metrics["test_accuracy"] <= 100


def test_finetune_maps_target_images_to_the_source_input():
    from latentlab.data.convert import to_shape as adapt
    x = torch.rand(2, 3, 32, 32)
    assert adapt(x, (1, 28, 28)).shape == (2, 1, 28, 28)
    assert adapt(torch.rand(2, 1, 16, 16), (3, 8, 8)).shape == (2, 3, 8, 8)
    grey = adapt(torch.ones(1, 3, 4, 4) * torch.tensor([1.0, 0, 0])[:, None, None], (1, 4, 4))
    assert torch.allclose(grey, torch.full((1, 1, 4, 4), 0.299))


def test_finetune_needs_a_source_unless_from_scratch():
    with pytest.raises(ConfigError, match="needs a source run directory"):
        resolve_config(get_method("finetune").Config, "finetune", None, {"mode": "linear"})


# -- task relations ------------------------------------------------------------------------------------------
def test_ahp_affinities_order_sources_by_per_image_wins():
    from latentlab.eval.taskonomy import ahp_affinities, win_rates
    g = torch.Generator().manual_seed(0)
    base = torch.rand(500, generator=g)
    losses = {"best": base, "middle": base + 0.1, "worst": base + 0.2 + 0.05 * torch.rand(500, generator=g)}
    w = win_rates(losses)
    assert torch.allclose(w + w.T, torch.ones(3, 3, dtype=w.dtype))               # i beats j or j beats i
    a = ahp_affinities(losses)
    assert a["best"] > a["middle"] > a["worst"] > 0 and sum(a.values()) == pytest.approx(1)
    tied = ahp_affinities({"x": base, "y": base.clone()})
    assert tied["x"] == pytest.approx(0.5) and tied["y"] == pytest.approx(0.5)
    # scale-free: multiplying one target's losses by 100 changes nothing
    assert ahp_affinities({k: 100 * v for k, v in losses.items()}) == pytest.approx(a)


def test_best_grouping_on_a_hand_made_table():
    from latentlab.eval.taskonomy import best_grouping, predict_group
    single = {t: 1.0 for t in "abcd"}
    pairs = {frozenset(p): {t: (0.8 if set(p) == {"a", "b"} else 0.9 if set(p) == {"c", "d"} else 1.2) for t in p}
             for p in itertools.combinations("abcd", 2)}
    groups, cost = best_grouping(list("abcd"), single, pairs, networks=2)
    assert sorted(map(tuple, groups)) == [("a", "b"), ("c", "d")] and cost == pytest.approx(3.4)
    groups, cost = best_grouping(list("abcd"), single, pairs, networks=1)
    assert groups == [tuple("abcd")]
    assert predict_group("a", tuple("abcd"), single, pairs) == pytest.approx((0.8 + 1.2 + 1.2) / 3)
    assert cost == pytest.approx(2 * (0.8 + 2.4) / 3 + 2 * (0.9 + 2.4) / 3)
    # with enough networks the single-task ones win where every pair hurts
    bad = {p: {t: 1.5 for t in p} for p in pairs}
    groups, cost = best_grouping(list("abcd"), single, bad, networks=4)
    assert cost == pytest.approx(4.0) and sorted(groups) == [("a",), ("b",), ("c",), ("d",)]

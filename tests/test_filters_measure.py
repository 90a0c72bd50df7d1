"""eval/filters.py against hand-made filters: Gabors and step edges are oriented, colour Gaussians are colour
blobs, grey filters have no colour, and i.i.d. random filters are neither (the chance level)."""

from __future__ import annotations

import math

import pytest
import torch

from latentlab.eval.filters import filter_stats, gabor, kinds, summary


def _grey(f):
    return torch.stack([f, f, f])


def _grid(k=5):
    ar = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    return torch.meshgrid(ar, ar, indexing="ij")


@pytest.mark.parametrize("theta", [0.0, math.pi / 6, math.pi / 4, math.pi / 2, 2.0])
def test_gabor_is_an_oriented_grey_edge(theta):
    s = filter_stats(_grey(gabor(5, theta))[None])
    assert s["orientation"].item() > 0.65 and s["colour"].item() == pytest.approx(0, abs=1e-6)
    assert kinds(s)["edge"].item() and not kinds(s)["blob"].item()


def test_orientation_is_rotation_and_sign_invariant():
    a = filter_stats(torch.stack([_grey(gabor(7, 0.3)), -_grey(gabor(7, 0.3)), _grey(gabor(7, 0.3 + math.pi / 2))]))
    assert torch.allclose(a["orientation"], a["orientation"][0].expand(3), atol=0.02)


def test_colour_blobs_and_grey_blobs():
    y, x = _grid()
    g = torch.exp(-(x ** 2 + y ** 2) / (2 * 1.25 ** 2))
    z = torch.zeros_like(g)
    w = torch.stack([torch.stack([g, -g, z]), torch.stack([g, z, z]), _grey(g)])   # opponent, red, grey
    s = filter_stats(w)
    assert s["colour"].tolist() == pytest.approx([1.0, 2 / 3, 0.0], abs=1e-6)
    assert (s["lowpass"] > 0.6).all() and (s["orientation"] < 0.1).all()
    assert kinds(s)["blob"].tolist() == [True, True, False]


def test_step_edge_is_oriented():
    y, x = _grid()
    s = filter_stats(_grey(torch.sign(x))[None])
    assert kinds(s)["edge"].item()


def test_random_filters_are_at_chance():
    w = torch.randn(2000, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    out = summary(w)
    assert out["edge_fraction"] < 0.02 and out["blob_fraction"] < 0.01
    assert out["mean_colour"] == pytest.approx(2 / 3, abs=0.02)


def test_one_channel_filters_have_no_colour_and_bad_shapes_are_refused():
    s = filter_stats(gabor(5, 0.5)[None, None])
    assert s["colour"].item() == 0.0
    with pytest.raises(ValueError, match="conv weight"):
        filter_stats(torch.randn(4, 5, 5))

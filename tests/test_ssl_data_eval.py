"""Augmentations, the moving-MNIST generator, k-NN and linear probe, and the representation CLI."""

from __future__ import annotations

import json

import pytest
import torch

from latentlab.cli import main
from latentlab.data import augment as A
from latentlab.data.moving_mnist import MovingMNIST, sample_videos, trajectories
from latentlab.eval.representation import knn_predict, linear_probe


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_augmentations_shape_range_and_seed(channels, size):
    x = torch.rand(6, channels, size, size)
    pipes = [A.simclr((size, size), channels), A.digits((size, size), channels),
             *A.byol_pair("digits", (size, size), channels), *A.multicrop("simclr", (size, size), channels, 3),
             A.build("digits_strong", (size, size), channels)]
    assert len(pipes) == 2 + 2 + 5 + 1
    for p in pipes:
        y = A.apply(p, x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.min() >= 0 and y.max() <= 1
    p = pipes[0]
    assert torch.equal(A.seeded(p, x, 7), A.seeded(p, x, 7))             # reproducible under a seed
    assert not torch.equal(A.seeded(p, x, 7), A.seeded(p, x, 8))
    a, b = A.apply(p, x), A.apply(p, x)                                   # global RNG: fresh views
    assert not torch.equal(a, b)
    torch.manual_seed(3)
    c = A.apply(p, x)
    torch.manual_seed(3)
    assert torch.equal(c, A.apply(p, x))
    assert torch.equal(A.apply(A.build("none", (size, size), channels), x), x)
    with pytest.raises(ValueError, match="unknown augmentation"):
        A.build("nope", (size, size), channels)


def test_moving_mnist_deterministic_bounded_and_mass_preserving():
    pos = trajectories(20, 15, -3, 3, torch.Generator().manual_seed(0))
    assert pos.shape == (20, 15, 2) and pos.min() >= -3 and pos.max() <= 3
    assert (pos[:, 1:] != pos[:, :-1]).any(-1).float().mean() > 0.5       # it moves
    imgs = torch.zeros(5, 1, 8, 8, dtype=torch.uint8)
    imgs[:, :, 2:6, 2:6] = 200                                            # content 2 px from every edge
    v = sample_videos(imgs, 5, margin=2, generator=torch.Generator().manual_seed(1))
    assert v.shape == (5, 5, 1, 8, 8)
    assert (v.float().sum((2, 3, 4)) == 200 * 16).all()                  # never clipped within the margin
    mm = MovingMNIST(imgs, num_videos=4, frames=6, canvas=20, num_digits=2, seed=3)
    assert mm[2].shape == (6, 1, 20, 20) and torch.equal(mm[2], MovingMNIST(imgs, 4, 6, 20, 2, seed=3)[2])
    assert not torch.equal(mm[2], MovingMNIST(imgs, 4, 6, 20, 2, seed=4)[2])


def _blobs(n_per, d=16, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = 4 * torch.randn(classes, d, generator=g)
    x = torch.cat([centers[c] + torch.randn(n_per, d, generator=g) for c in range(classes)])
    return x, torch.arange(classes).repeat_interleave(n_per)


def test_knn_and_linear_probe_on_separable_set():
    xtr, ytr = _blobs(100)
    xva, yva = _blobs(20, seed=1)
    xte, yte = _blobs(50, seed=2)
    # same centres (seeded identically) -> separable
    xva, xte = xva - _blobs(20, seed=1)[0] + _blobs(20)[0][:80], xte - _blobs(50, seed=2)[0] + _blobs(50)[0]
    acc = (knn_predict(xtr, ytr, xte, 4) == yte).float().mean().item()
    assert acc > 0.95
    r = linear_probe((xtr, ytr), (xva, yva), (xte, yte), 4, weight_decays=(0.0, 1e-2), iters=50)
    assert r["test"] > 0.95 and r["weight_decay"] in (0.0, 1e-2)
    assert r["weight_decay_at_grid_edge"] == {0.0: "smallest", 1e-2: "largest"}[r["weight_decay"]]
    assert linear_probe((xtr, ytr), (xva, yva), (xte, yte), 4, weight_decays=(0.0, 1e-2), iters=50, device="cpu") == r
    if torch.cuda.is_available():   # the probe follows the run's device
        g = linear_probe((xtr, ytr), (xva, yva), (xte, yte), 4, weight_decays=(0.0, 1e-2), iters=50, device="cuda")
        assert g["weight_decay"] == r["weight_decay"] and abs(g["test"] - r["test"]) <= 0.02


def test_grid_edge_and_grid_validation():
    from latentlab.errors import ConfigError
    from latentlab.eval.representation import check_weight_decays, grid_edge
    assert grid_edge((1e-5, 1e-4, 1e-3), 1e-4) is None
    assert grid_edge((1e-5, 1e-4, 1e-3), 1e-3) == "largest" and grid_edge((1e-4, 1e-5), 1e-5) == "smallest"
    assert grid_edge((1e-3,), 1e-3) is None and grid_edge((1e-3, 1e-3), 1e-3) is None   # nothing to widen
    assert check_weight_decays([0, "1e-2"]) == (0.0, 1e-2)
    for bad in ((), (1e-3, -1e-3), (float("inf"),), ("x",), None):
        with pytest.raises(ConfigError, match="weight decays must be"):
            check_weight_decays(bad)


def test_knn_weighting_hand_example():
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # a query close to class 1's single point but with k=3 the two class-0 points vote too
    q = torch.tensor([[0.2, 1.0]])
    assert knn_predict(train, labels, q, 2, k=3, temperature=0.07).item() == 1
    assert knn_predict(train, labels, q, 2, k=3, temperature=100.0).item() == 0   # ~uniform votes: majority


def test_cli_tiny_ssl_run_and_both_protocols(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "simclr", "--out", str(out), "dataset=digits", "steps=4", "batch_size=16",
               "proj_hidden=32", "log_every=2", "knn_every=2", "knn_samples=50", "ckpt_every=2", "image_every=2"])
    assert rc == 0
    for f in ("config.yaml", "metrics.jsonl", "weights.safetensors", "eval.json", "checkpoints/last.ckpt",
              "checkpoints/step_0000002.ckpt"):
        assert (out / f).is_file(), f
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("knn_acc" in r for r in rows)
    assert json.loads((out / "eval.json").read_text())["protocol"]["k"] == 20
    capsys.readouterr()
    for proto in ("knn", "linear"):
        assert main(["eval", str(out), "--protocol", proto, "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        key = f"{proto}_test_accuracy"
        assert proto in key and 0.5 < res[key] <= 1.0, res
        assert res["protocol"]["protocol"] == proto and "val_split" in res["protocol"]
    assert list(out.glob("features_digits_test_4.pt"))                    # cached per step
    assert main(["eval", str(out), "--protocol", "linear", "--layer", "maps", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["layer"].startswith("forward_maps") and res["protocol"]["feature_dim"] == 64 * 2 * 2
    assert res["protocol"]["probe_device"] == "cpu"                        # the run's device
    assert 0.5 < res["linear_test_accuracy"] <= 1.0 and (out / "eval_linear_maps.json").is_file()
    assert list(out.glob("maps_digits_test_4.pt"))
    # the weight-decay grid: recorded, flagged at its edge (with a note), validated, linear protocol only
    assert main(["eval", str(out), "--protocol", "linear", "--weight-decays", "1e-3,1e-1", "--json"]) == 0
    cap = capsys.readouterr()
    p = json.loads(cap.out)["protocol"]
    assert p["weight_decay_grid"] == [1e-3, 1e-1] and p["weight_decay"] in (1e-3, 1e-1)
    assert p["weight_decay_at_grid_edge"] == ("largest" if p["weight_decay"] == 1e-1 else "smallest")
    assert f"the grid's {p['weight_decay_at_grid_edge']}" in cap.err
    for bad, msg in (("1e-3,x", "expected comma-separated numbers"), ("1e-3,-1", "finite values >= 0"),
                     ("nan", "finite values >= 0")):
        assert main(["eval", str(out), "--protocol", "linear", "--weight-decays", bad]) == 2
        assert msg in capsys.readouterr().err
    assert main(["eval", str(out), "--protocol", "knn", "--weight-decays", "1e-3"]) == 2
    assert "has no option 'weight_decays'" in capsys.readouterr().err
    assert main(["eval", str(out), "--protocol", "retrieval", "--layer", "maps"]) == 2   # no such option
    assert "has no option 'layer'" in capsys.readouterr().err
    # any module by name: the conv1 output, flattened (digits: 32 channels x 8 x 8)
    assert main(["eval", str(out), "--protocol", "knn", "--layer", "conv1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["layer"] == "module 'conv1' output, flattened" and res["protocol"]["feature_dim"] == 32 * 64
    assert main(["eval", str(out), "--protocol", "knn", "--layer", "conv9"]) == 2
    assert "layer 'conv9' not found; layers: features, maps, conv1" in capsys.readouterr().err


def test_one_extractor_for_probes_and_descriptors():
    """eval.representation.extract (behind the probes and eval.representation.descriptors): forward_features,
    any module's output flattened, or the pooled last conv maps; the encoder's mode is restored."""
    from latentlab import nets
    from latentlab.eval.representation import extract
    enc = nets.create("convnet", in_chans=1, img_size=8, num_classes=0, width=4, num_features=6)
    enc.train()
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    prep = lambda u: u.float() / 255                                          # noqa: E731
    with torch.no_grad():
        ref = enc.forward_features(prep(x))
        conv2 = enc.conv2(enc.pool(torch.relu(enc.conv1(prep(x)))))          # (5, 8, 4, 4)
    torch.testing.assert_close(extract(enc, x, prep, batch_size=2), ref)
    torch.testing.assert_close(extract(enc, x, prep, batch_size=2, layer="conv2"), conv2.flatten(1))
    assert extract(enc, x, prep, layer="maps").shape == (5, 8 * 2 * 2)        # 32 values: not pooled
    assert enc.training                                                       # mode restored


def test_pooled_maps_caps_the_dimension_and_resnet_has_maps():
    from latentlab import nets
    from latentlab.eval.representation import pooled_maps
    assert pooled_maps(torch.randn(2, 64, 7, 7)).shape == (2, 64 * 7 * 7)      # 3136 <= 4096: kept
    assert pooled_maps(torch.randn(2, 512, 4, 4)).shape == (2, 512 * 2 * 2)    # pooled to 2x2
    assert pooled_maps(torch.randn(2, 8192, 2, 2)).shape == (2, 8192)          # at least 1x1
    m = torch.randn(1, 4, 4, 4)
    assert torch.allclose(pooled_maps(m, 16), torch.nn.functional.avg_pool2d(m, 2).flatten(1))  # 4 x 2 x 2
    assert torch.allclose(pooled_maps(m, 4), m.mean((2, 3)))                  # 4 x 1 x 1
    r = nets.create("resnet18", in_chans=1, width=8, img_size=16, num_classes=0)
    x = torch.randn(2, 1, 16, 16)
    assert r.forward_maps(x).shape == (2, 64, 2, 2)
    assert torch.allclose(r.forward_features(x), r.forward_maps(x).mean((2, 3)), atol=1e-6)


def test_generic_protocols_evaluate_a_supervised_run(tmp_path, capsys, outcome_seed):
    out = tmp_path / "sup"
    assert main(["train", "supervised", "--out", str(out), "steps=30", "batch_size=32", "image_every=0",
                 "log_every=10", f"seed={outcome_seed}"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--protocol", "knn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["knn_test_accuracy"] > 0.8


def test_digits_strong_scrambles_colour_but_keeps_the_shape():
    """An image with a bright square on a red background: under digits_strong, the background colour
    varies across views (hue, channel shuffle, inversion, grayscale) while the square stays a square."""
    x = torch.zeros(64, 3, 16, 16)
    x[:, 0] = 0.8                                                         # red background
    x[:, :, 5:11, 5:11] = 0.9                                             # bright square: the "digit"
    torch.manual_seed(0)
    p = A.build("digits_strong", (16, 16), 3)
    p[0].p = 0.0                                                          # no crop: compare positions
    y = A.apply(p, x)
    corner = y[:, :, 0, 0]                                                # background colour per view
    assert corner.std(0).max() > 0.15                                     # colour is no longer a constant
    assert (corner.argmax(1) != 0).float().mean() > 0.2                   # not always red-dominant
    diff = (y[:, :, 8, 8] - y[:, :, 1, 1]).abs().amax(1)
    assert (diff > 0.1).float().mean() > 0.9                              # the square still stands out

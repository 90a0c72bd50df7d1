"""Looking inside representations: AlexNet (torchvision keys), filters, activations, NCC, retrieval, ensembles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.errors import ConfigError
from latentlab.eval.retrieval import l2_neighbours, retrieval_metrics
from latentlab.methods import get_method
from latentlab.nets.alexnet import AlexNet, load_torchvision_alexnet
from latentlab.viz.correlate import ncc_map, peak
from latentlab.viz.filters import filter_grid
from latentlab.viz.retrieval import retrieval_panel

from helpers import assert_same_weights, weights

# torchvision.models.alexnet() state dict: key -> shape (written out from its documented layout)
TV_SHAPES = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}


def _cfg(method, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


@pytest.fixture(scope="module")
def tiny_rgb(tmp_path_factory) -> Path:
    """3 classes of 32x32 colour images (a bright square whose colour and place depend on the class)."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 12)):
        for c in range(3):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
                y, x = 4 + 8 * c + rng.integers(-2, 3), 6 + rng.integers(-2, 3)
                a[y:y + 10, x:x + 10, c] = 250
                Image.fromarray(a).save(d / f"{i}.png")
    return root


# -- AlexNet and torchvision files ---------------------------------------------------------------

def test_torchvision_state_dict_loads_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * 0.01 for k, s in TV_SHAPES.items()}
    torch.save(sd, tmp_path / "alexnet.pth")
    for lrn in (False, True):
        model = load_torchvision_alexnet(tmp_path / "alexnet.pth", lrn=lrn)
        out = model.state_dict()
        assert list(out) == list(TV_SHAPES)                      # same keys, same order as torchvision
        assert all(torch.equal(out[k], sd[k]) for k in sd)
    torch.save(model.state_dict(), tmp_path / "again.pth")      # our file loads back identically
    again = load_torchvision_alexnet(tmp_path / "again.pth")
    assert all(torch.equal(again.state_dict()[k], sd[k]) for k in sd)
    with torch.no_grad():
        y = again.eval()(torch.rand(1, 3, 224, 224))
    assert y.shape == (1, 1000)
    ten = load_torchvision_alexnet(tmp_path / "alexnet.pth", num_classes=10)  # new fc8, rest kept
    assert ten.classifier[6].weight.shape == (10, 4096) and torch.equal(ten.features[0].weight, sd["features.0.weight"])


def test_torchvision_loader_refuses_pickled_code_and_wrong_files(tmp_path):
    torch.save({"features.0.weight": torch.zeros(1), "evil": Path("/")}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="weights-only"):
        load_torchvision_alexnet(tmp_path / "bad.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="not a torchvision AlexNet"):
        load_torchvision_alexnet(tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="no such"):
        load_torchvision_alexnet(tmp_path / "missing.pth")


def test_alexnet_layout_dropout_and_features():
    m = AlexNet(in_chans=1, num_classes=7, channels=(8, 8, 8, 8, 8), hidden=16, lrn=True)
    assert [k for k in m.state_dict() if k.endswith("weight")] == [
        "features.0.weight", "features.3.weight", "features.6.weight", "features.8.weight", "features.10.weight",
        "classifier.1.weight", "classifier.4.weight", "classifier.6.weight"]
    assert m.classifier[0].p == m.classifier[3].p == 0.5
    m.eval()
    x = torch.rand(2, 1, 64, 64)
    assert m.forward_features(x).shape == (2, 16) and m(x).shape == (2, 7)


# -- pictures ---------------------------------------------------------------------------------------

def test_filter_grid_of_planted_weights():
    w = torch.zeros(4, 3, 5, 5)
    w[0, 0] = 1.0                                  # pure red kernel
    w[1] = torch.arange(5.0).view(1, 1, 5)         # grey horizontal ramp
    w[2, 2] = -3.0                                 # blue channel lowest: yellow after normalisation
    w[3] = torch.randn(3, 5, 5)
    grid = filter_grid(w, scale=1, padding=1)
    assert grid.shape == (3, 13, 13)               # 2x2 tiles of 5 px with 1 px borders
    tile = lambda i: grid[:, 1 + 6 * (i // 2):6 + 6 * (i // 2), 1 + 6 * (i % 2):6 + 6 * (i % 2)]
    assert torch.allclose(tile(0)[:, 2, 2], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(tile(1)[0, 0], torch.linspace(0, 1, 5)) and torch.equal(tile(1)[0], tile(1)[2])
    assert torch.allclose(tile(2)[:, 0, 0], torch.tensor([1.0, 1, 0]))
    assert tile(3).min() == 0 and tile(3).max() == 1  # each kernel scaled on its own
    gray = filter_grid(torch.randn(9, 1, 3, 3))    # grayscale input, default upscaling to >= 24 px
    assert gray.shape == (3, 3 * 25 + 1, 3 * 25 + 1)


def test_ncc_peak_at_planted_template():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 40, 50, generator=g) * 0.3
    tpl = torch.rand(3, 7, 9, generator=g)
    image[:, 21:28, 13:22] = 0.5 * tpl                     # the template, half as bright
    m = ncc_map(image, tpl)
    assert m.shape == (34, 42) and peak(m) == (21, 13)
    assert abs(m.max().item() - 1) < 1e-6 and m.max() > m.flatten().sort().values[-2] + 0.01
    image[:, 21:28, 13:22] = 0.5 * tpl + 0.2               # an offset: only the zero-mean NCC is exactly 1
    mz = ncc_map(image, tpl, zero_mean=True)
    assert peak(mz) == (21, 13) and abs(mz.max().item() - 1) < 1e-6
    with pytest.raises(ValueError):
        ncc_map(image[:, :5, :5], tpl)


def test_retrieval_panel_size():
    g = torch.randint(0, 255, (20, 1, 16, 16), dtype=torch.uint8)
    lab = torch.arange(20) % 2
    nn_idx = torch.arange(18).view(3, 6)
    p = retrieval_panel(g[:3], lab[:3], nn_idx, nn_idx.flip(1), g, lab, size=48, border=3, gap=16)
    assert p.shape == (3, 3 * 54 + 2 * 4, 54 * 13 + 32)
    assert torch.allclose(p[:, 1, 54 + 16 + 1], torch.tensor([0.1, 0.75, 0.2]))  # neighbour 0 = query 0's class


# -- retrieval --------------------------------------------------------------------------------------

def test_nearest_neighbours_known_on_synthetic_set():
    g = torch.Generator().manual_seed(0)
    gallery = torch.randn(200, 16, generator=g)
    perm = torch.randperm(200, generator=g)[:30]
    queries = gallery[perm] + 1e-3 * torch.randn(30, 16, generator=g)
    d, i = l2_neighbours(queries, gallery, k=3)
    assert torch.equal(i[:, 0], perm) and (d[:, 0] < d[:, 1]).all()
    _, j = l2_neighbours(gallery, gallery, k=1, exclude_self=True)     # self excluded
    assert not (j[:, 0] == torch.arange(200)).any()


def test_retrieval_metrics_hand_computed():
    gallery = torch.tensor([[1.0], [2.0], [3.0], [10.0]])
    g_lab = torch.tensor([0, 1, 0, 1])
    q = torch.tensor([[0.0], [11.0]])
    r = retrieval_metrics(q, torch.tensor([0, 1]), gallery, g_lab, k=2)
    # query 0 ranks labels 0,1,0,1: AP = (1/1 + 2/3)/2, P@2 = 1/2; query 1 ranks 1,0,1,0: AP = (1 + 2/3)/2
    assert r["precision"] == pytest.approx(0.5) and r["map"] == pytest.approx((1 + 2 / 3) / 2)
    clusters = torch.cat([torch.randn(50, 4) * 0.1 + 5 * c for c in range(3)])
    lab = torch.arange(3).repeat_interleave(50)
    perfect = retrieval_metrics(clusters, lab, clusters, lab, k=6)
    assert perfect == {"precision": 1.0, "map": 1.0}


# -- method and commands end to end -------------------------------------------------------------------

def test_alexnet_resume_is_exact_through_plateau_schedule(tiny_rgb, tmp_path):
    kw = dict(dataset=str(tiny_rgb), batch_size=16, val_every=2, plateau_patience=0, log_every=2, image_every=0,
              eval_at_end=False, val_fraction=0.2, lr=0.05)
    straight = train(get_method("alexnet"), _cfg("alexnet", steps=8, **kw), out=tmp_path / "a", verbose=False)
    train(get_method("alexnet"), _cfg("alexnet", steps=5, **kw), out=tmp_path / "b", verbose=False)
    train(get_method("alexnet"), _cfg("alexnet", steps=8, **kw), resume=tmp_path / "b", verbose=False)
    assert_same_weights(weights(straight.run_dir), weights(tmp_path / "b"))
    lrs = [r["lr"] for r in map(json.loads, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())
           if "lr" in r]
    assert lrs[0] == 0.05


ALEX_TINY = ["steps=40", "batch_size=32", "lr=0.01", "lrn=false", "dropout=0.0", "val_every=20", "log_every=20"]


def test_alexnet_learns_tiny_rgb(tiny_rgb, tmp_path, outcome_seed):
    """A trained outcome: every seed of the outcome set, with 1 and 2 threads (conftest.outcome_seed)."""
    out = tmp_path / "run"
    assert main(["train", "alexnet", f"dataset={tiny_rgb}", *ALEX_TINY, f"seed={outcome_seed}", "image_every=0",
                 "--out", str(out)]) == 0
    ev = json.loads((out / "eval.json").read_text())["metrics"]
    assert ev["test_accuracy"] > 0.6 and 0 <= ev["test_accuracy_tta"] <= 1 and "test_accuracy_tta_crops" in ev


def test_alexnet_every_command_runs(tiny_rgb, tmp_path, capsys):
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        assert main(["train", "alexnet", f"dataset={tiny_rgb}", *ALEX_TINY, f"seed={seed}", "image_every=20",
                     "--out", str(out)]) == 0
        runs.append(str(out))
    from latentlab.api import load_run
    m = load_run(runs[0])
    views = m.view_probs(m.test_set.images[:5])                       # 5 crops + 5 mirrored crops
    assert views.shape == (10, 5, 3) and torch.allclose(views[4], m.predict_proba(m.test_set.images[:5]))
    assert torch.allclose(views.mean(0), m.predict_proba(m.test_set.images[:5], tta=True))
    assert list((tmp_path / "run0" / "images").glob("filters_*.png"))
    capsys.readouterr()
    assert main(["eval", runs[0], "--protocol", "retrieval", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"feature_map", "feature_precision@6", "pixel_map", "pixel_precision@6"} <= r.keys()
    assert r["protocol"]["n_gallery"] == 120 and r["protocol"]["k"] == 6
    assert main(["eval", runs[0], "--protocol", "knn", "--json"]) == 0  # generic protocols see the centre crop
    assert 0.0 <= json.loads(capsys.readouterr().out)["knn_test_accuracy"] <= 1.0
    assert main(["ensemble", *runs, "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["gain_over_mean_single"] == pytest.approx(e["ensemble_accuracy"] - e["mean_single_accuracy"])
    pics = {
        "filters.png": ["viz", "filters", runs[0]],
        "act.png": ["viz", "activations", runs[0]],
        "top.png": ["viz", "activations", runs[0], "--top", "--units", "0,1", "--k", "4", "--n-images", "60"],
        "fc6.png": ["retrieve", runs[0], "--layer", "classifier.1", "--n-queries", "3"],
        "ret.png": ["retrieve", runs[0], "--n-queries", "4"],
        "emb.png": ["viz", "embedding", runs[0], "--n", "36"],
    }
    for name, args in pics.items():
        assert main([*args, "--out", str(tmp_path / name)]) == 0, name
    assert Image.open(tmp_path / "filters.png").size == (6 * 25 + 7, 6 * 25 + 7)  # 32 kernels 5x5, x5, 6 per row
    assert Image.open(tmp_path / "top.png").size == (4 * 34 + 2, 2 * 34 + 2)
    assert Image.open(tmp_path / "ret.png").size == (54 * 13 + 32, 4 * 54 + 3 * 4 + 18)
    assert list((Path(runs[0]) / "tb").glob("**/projector_config.pbtxt"))
    assert main(["retrieve", runs[0], "--layer", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "layer 'nope' not found" in capsys.readouterr().err


def test_retrieval_of_a_trained_supervised_run(tmp_path, capsys, outcome_seed):
    """A trained outcome (every seed and thread count of conftest.outcome_seed): 30 steps on digits put
    same-class images among a query's 6 nearest neighbours."""
    run = tmp_path / "s"
    assert main(["train", "supervised", "steps=30", "log_every=30", f"seed={outcome_seed}", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--protocol", "retrieval", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["feature_precision@6"] > 0.5


def test_viz_commands_on_a_supervised_run_and_correlate(tmp_path, capsys):
    run = tmp_path / "s"
    assert main(["train", "supervised", "steps=30", "log_every=30", "--out", str(run)]) == 0
    for args in (["viz", "filters", str(run)], ["viz", "activations", str(run), "--index", "3"],
                 ["viz", "activations", str(run), "--top", "--layer", "conv2", "--n-images", "50"],
                 ["retrieve", str(run), "--query", "0,1,2"]):
        assert main([*args, "--out", str(tmp_path / "p.png")]) == 0, args
    rng = np.random.default_rng(0)
    img = rng.integers(0, 80, (40, 50)).astype(np.uint8)
    tpl = rng.integers(0, 255, (7, 9)).astype(np.uint8)
    img[12:19, 30:39] = tpl
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(tpl).save(tmp_path / "tpl.png")
    assert main(["viz", "correlate", "--image", str(tmp_path / "img.png"), "--template", str(tmp_path / "tpl.png"),
                 "--out", str(tmp_path / "c.png")]) == 0
    assert "at row 12, col 30" in capsys.readouterr().out
    assert Image.open(tmp_path / "c.png").size[0] > 400
    assert main(["viz", "correlate", "--image", str(tmp_path / "none.png"), "--template", str(tmp_path / "tpl.png"),
                 "--out", str(tmp_path / "c.png")]) == 2


def test_alexnet_method_with_a_frozen_torchvision_file(tiny_rgb, tmp_path):
    narrow = AlexNet(3, 1000, channels=(8, 8, 8, 8, 8), hidden=16)   # torchvision keys, narrow widths
    torch.save(narrow.state_dict(), tmp_path / "tv.pth")
    res = train(get_method("alexnet"), _cfg("alexnet", dataset=str(tiny_rgb), net="alexnet", pretrained=tmp_path / "tv.pth",
                                freeze=True, resize=64, crop_size=63, steps=3, batch_size=16, val_every=100,
                                image_every=0, test_subset=10), out=tmp_path / "r", verbose=False)
    w = weights(res.run_dir)
    assert torch.equal(w["model.features.0.weight"], narrow.features[0].weight)     # encoder frozen
    assert torch.equal(w["model.classifier.4.weight"], narrow.classifier[4].weight)
    assert w["model.classifier.6.weight"].shape == (3, 16)                          # new fc8 for 3 classes
    assert res.eval.protocol["n_test"] == 10
    with pytest.raises(ConfigError, match="pretrained"):
        _cfg("alexnet", pretrained=str(tmp_path / "tv.pth"))                        # needs net=alexnet

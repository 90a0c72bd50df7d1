"""The first methods end to end: supervised learns, gan1d's theta reaches the data mean, gan2d covers modes."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.methods import get_method

from conftest import needs


def _cfg(method, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


def test_supervised_learns_digits(tmp_path, outcome_seed):
    res = train(get_method("supervised"), _cfg("supervised", steps=300, batch_size=64, log_every=50, seed=outcome_seed),
                out=tmp_path / "s", verbose=False)
    assert res.eval.metrics["test_accuracy"] > 0.9
    assert res.eval.protocol["selection"].startswith("last step")


def test_supervised_overfits_one_batch(tmp_path):
    cfg = _cfg("supervised", steps=60, batch_size=16, val_fraction=0.0, eval_at_end=False, lr=3e-3)
    from latentlab.methods.supervised import Supervised
    m = Supervised(cfg)
    from latentlab.engine import make_fabric
    m.setup(make_fabric(cfg))
    x, y = m.train_set.images[:16], m.train_set.labels[:16]
    for step in range(60):
        m.step = step
        logs = m.training_step({"x": x, "y": y}, step)
    assert logs["train_acc"] == 1.0 and logs["loss"] < 0.05


def test_supervised_onecycle_schedule_peaks_then_anneals_and_resumes(tmp_path):
    """lr_schedule=onecycle: the rate rises to ``lr`` over the first 30% of the steps and falls far below it by the end;
    the scheduler is in the checkpoint, so a resumed run continues the same schedule."""
    cfg = _cfg("supervised", steps=20, batch_size=16, lr=0.01, lr_schedule="onecycle", log_every=1,
               eval_at_end=False, ckpt_every=10)
    from latentlab.engine.checkpoint import load_checkpoint
    train(get_method("supervised"), cfg, out=tmp_path / "a", verbose=False)
    ref = torch.optim.lr_scheduler.OneCycleLR(torch.optim.SGD([torch.zeros(1)], lr=0.01), 0.01, total_steps=20)
    lrs = [ref.get_last_lr()[0]]                   # lrs[t]: the rate of step t (0-based)
    for _ in range(19):
        ref.optimizer.step()
        ref.step()
        lrs.append(ref.get_last_lr()[0])
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) == 5 and lrs[-1] < 1e-4
    for name, step in (("last", 19), ("step_0000010", 10)):
        st = load_checkpoint(tmp_path / "a" / "checkpoints" / (name + ".ckpt"))["method"]["schedulers"]["model"]
        assert st["last_epoch"] == step and st["_last_lr"][0] == pytest.approx(lrs[step])


def test_supervised_fast_preset_is_a_valid_config():
    """configs/supervised_mnist_fast.yaml (the benchmark's chosen recipe) loads and names only known keys."""
    from pathlib import Path
    f = Path(__file__).resolve().parents[1] / "configs" / "supervised_mnist_fast.yaml"
    cfg = resolve_config(get_method("supervised").Config, "supervised", f)
    assert (cfg.dataset, cfg.lr_schedule, cfg.width) == ("mnist", "onecycle", 16)


def test_featurenet_recipe_is_pinned_not_the_supervised_defaults():
    """The FID feature network's recipe is fixed in eval/featurenet.py: changing the ``supervised``
    defaults must not change the network every recorded FID was measured with."""
    from latentlab.commands.featurenet import RECIPE
    cfg = resolve_config(get_method("supervised").Config, "supervised", None, RECIPE)
    assert (cfg.lr_schedule, cfg.width, cfg.batch_size, cfg.lr) == ("constant", 32, 64, 1e-3)


@needs("mnist")
def test_supervised_mnist_short(tmp_path, outcome_seed):
    res = train(get_method("supervised"), _cfg("supervised", dataset="mnist", steps=150, batch_size=64, log_every=50,
                                   eval_batch_size=2000, seed=outcome_seed), out=tmp_path / "m", verbose=False)
    assert res.eval.metrics["test_accuracy"] > 0.9


def test_gan1d_theta_converges_to_data_mean(tmp_path, outcome_seed):
    res = train(get_method("gan1d"), _cfg("gan1d", image_every=0, seed=outcome_seed), out=tmp_path / "g", verbose=False)
    assert res.eval.metrics["abs_error"] < 0.15, res.eval.metrics
    img = Image.open(res.artifacts["densities"])
    assert img.width > 600 and img.height > 200


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
def test_gan1d_both_losses_move_theta_towards_mean(tmp_path, loss, outcome_seed):
    res = train(get_method("gan1d"), _cfg("gan1d", loss=loss, steps=600, image_every=0, seed=outcome_seed), out=tmp_path / loss,
                verbose=False)
    assert res.eval.metrics["abs_error"] < 0.5 * res.eval.metrics["data_mean"]


def test_gan2d_ring8_defaults_capture_every_mode_and_cli_eval_sample(tmp_path, capsys, outcome_seed):
    """`make run`'s job: the defaults capture the 8 modes at high quality (benchmarks/gan2d.py: 10 seeds)."""
    out = tmp_path / "ring"
    assert main(["train", "gan2d", "--out", str(out), "image_every=0", f"seed={outcome_seed}"]) == 0
    assert f"ring8: {json.loads((out / 'eval.json').read_text())['metrics']['modes']}/8 modes captured" in \
        capsys.readouterr().out
    ev = json.loads((out / "eval.json").read_text())["metrics"]
    assert ev["modes"] >= 7 and ev["hq_fraction"] > 0.8, ev
    assert main(["eval", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["modes"] == ev["modes"] and js["protocol"]["n_samples"] == 2500
    assert js["protocol"]["recipe"] == "nonsaturating, R1 0.4"
    assert main(["sample", str(out), "--n", "500", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 100


def test_sample_refuses_non_generative(tmp_path, capsys):
    out = tmp_path / "sup"
    assert main(["train", "supervised", "--out", str(out), "steps=2", "eval_at_end=false"]) == 0
    assert main(["sample", str(out), "--n", "4", "--out", str(tmp_path / "x.png")]) == 2
    assert "not generative" in capsys.readouterr().err

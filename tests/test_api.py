"""The Python API: the same runs, validation and errors as the CLI, as objects and exceptions."""

from __future__ import annotations

import json

import pytest
import torch

import latentlab as ll
from latentlab.cli import main


def test_train_sample_evaluate_load(tmp_path):
    run = ll.train("gan2d", out=tmp_path / "r", steps=60, ckpt_every=0, image_every=0, eval_samples=500,
                   verbose=False)
    assert run.name == "gan2d" and run.step == 60 and set(run.metrics) >= {"modes", "hq_fraction"}
    assert run.config["steps"] == 60 and run.log()[-1]["step"] == 60
    x = run.sample(100)
    assert x.shape == (100, 2) and torch.isfinite(x).all()
    again = ll.load(tmp_path / "r")
    assert again.step == 60 and torch.equal(again.sample(100, seed=1), run.sample(100, seed=1))
    res = again.evaluate()
    assert res.metrics == json.loads((tmp_path / "r" / "eval.json").read_text())["metrics"]
    # the same figures as the CLI's eval of the same run
    assert main(["eval", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "eval.json").read_text())["metrics"] == res.metrics


def test_resume_through_the_api(tmp_path):
    ll.train("gan2d", out=tmp_path / "r", steps=20, ckpt_every=0, image_every=0, eval_at_end=False, verbose=False)
    run = ll.train("gan2d", resume=tmp_path / "r", steps=30, eval_at_end=False, verbose=False)
    assert run.step == 30 and run.metrics is None
    with pytest.raises(ll.LatentlabError, match="'d_hidden' cannot change on resume"):
        ll.train("gan2d", resume=tmp_path / "r", steps=40, d_hidden=64, verbose=False)
    with pytest.raises(ll.ConfigError, match="resume cannot be combined"):
        ll.train("gan2d", resume=tmp_path / "r", out=tmp_path / "x", verbose=False)


def test_errors_are_exceptions_and_write_nothing(tmp_path):
    with pytest.raises(ll.ConfigError, match="unknown config key 'no_such_key'"):
        ll.train("gan2d", out=tmp_path / "a", no_such_key=1, verbose=False)
    with pytest.raises(ll.ConfigError, match="config key 'lr'"):
        ll.train("gan2d", out=tmp_path / "b", lr=float("inf"), verbose=False)
    with pytest.raises(ll.ConfigError, match="unknown method"):
        ll.train("no_such_method", out=tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")
    with pytest.raises(ll.LatentlabError, match="not a run directory"):
        ll.load(tmp_path)


def test_methods_and_config():
    import latentlab.methods                                         # binds the package to ll.methods ...
    ms = ll.methods()                                                # ... which is callable
    assert {"gan2d", "dcgan", "simclr", "supervised"} <= set(ms) and all(ms.values())
    cfg = ll.resolve("dcgan", steps=10, betas=[0.5, 0.999])
    assert cfg["steps"] == 10 and cfg["betas"] == [0.5, 0.999]


def test_sample_refuses_non_generative_and_empty(tmp_path):
    run = ll.train("supervised", out=tmp_path / "s", dataset="digits", steps=2, image_every=0, eval_at_end=False,
                   verbose=False)
    with pytest.raises(ll.ConfigError, match="not generative"):
        run.sample(4)
    with pytest.raises(ll.ConfigError, match="at least 1"):
        run.sample(0)


@pytest.mark.parametrize("method", ["gan2d", "supervised"])
def test_unknown_protocol_is_refused_and_writes_nothing(tmp_path, method, capsys):
    run = ll.train(method, out=tmp_path / "r", dataset="ring8" if method == "gan2d" else "digits", steps=3,
                   image_every=0, eval_at_end=False, verbose=False)
    before = sorted(p.name for p in run.run_dir.iterdir())
    capsys.readouterr()
    assert main(["eval", str(run.run_dir), "--protocol", "linaer"]) == 2
    err = capsys.readouterr().err
    assert f"method '{method}' has no protocol 'linaer'" in err
    assert ("modes" if method == "gan2d" else "linear") in err   # the protocols it supports are listed
    assert sorted(p.name for p in run.run_dir.iterdir()) == before       # no eval_linaer.json
    with pytest.raises(ll.ConfigError, match="no protocol 'test'" if method == "gan2d" else "no protocol"):
        run.evaluate("test")

"""Config resolution and validation, and the CLI's error contract (one line, exit code 2)."""

from __future__ import annotations

import pytest
import yaml

from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.errors import ConfigError
from latentlab.methods import METHODS, get_method


def test_defaults_file_overrides_precedence(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("method: gan2d\nlr: 0.001\nsteps: 7\nbetas: [0.1, 0.2]\n")
    cfg = resolve_config(get_method("gan2d").Config, "gan2d", f, ["steps=9", "loss=minimax"])
    assert (cfg.lr, cfg.steps, cfg.betas, cfg.loss, cfg.batch_size) == (0.001, 9, (0.1, 0.2), "minimax", 512)


@pytest.mark.parametrize("override,fragment", [
    ("lr=-1", "config key 'lr' = -1.0 is out of range: must be > 0"),
    ("steps=abc", "config key 'steps': expected an integer, got 'abc'"),
    ("nosuchkey=1", "unknown config key 'nosuchkey'"),
    ("loss=hinge", "config key 'loss' = 'hinge' is not one of"),
    ("loss=wasserstein", "set r1=0"),
    ("betas=[0.5]", "config key 'betas': expected 2 values"),
    ("betas=[0.5,1.5]", "config key 'betas' = (0.5, 1.5) is invalid"),
    ("channels_last=maybe", "config key 'channels_last': expected true/false"),
    ("steps", "is not of the form key=value"),
])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, override, fragment):
    out = tmp_path / "run"
    assert main(["train", "gan2d", "--out", str(out), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0]
    assert not out.exists()


def test_bad_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [unclosed\n")
    assert main(["train", "gan2d", "--config", str(bad), "--dry-run"]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["train", "gan2d", "--config", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    assert "no such config file" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text("method: gan1d\n")
    assert main(["train", "gan2d", "--config", str(other), "--dry-run"]) == 2
    assert "not 'gan2d'" in capsys.readouterr().err


def test_dry_run_prints_resolved_yaml(capsys):
    assert main(["train", "gan2d", "--dry-run", "steps=11", "lr=2e-4"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["method"] == "gan2d" and cfg["steps"] == 11 and cfg["lr"] == 2e-4 and cfg["dataset"] == "ring8"


def test_unknown_method(capsys):
    assert main(["train", "nosuch", "--dry-run"]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err


def test_methods_lists_every_method(capsys):
    assert main(["methods", "--verbose"]) == 0
    out = capsys.readouterr().out
    for name, cls in METHODS.items():
        assert name in out
        assert cls.paper and cls.summary


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_config_defaults_validate(name):
    cls = get_method(name)
    cfg = cls.Config()
    assert cfg.steps >= 1
    with pytest.raises(ConfigError):
        resolve_config(cls.Config, name, None, ["batch_size=0"])


def test_eval_and_sample_on_a_missing_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err

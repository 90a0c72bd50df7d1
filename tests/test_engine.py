"""The engine: exact resume, signals, non-finite loss, run-directory artifacts, DDP equivalence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.engine import train
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.engine.logging import read_metrics
from latentlab.errors import NonFiniteLossError
from latentlab.methods import get_method
from latentlab.engine import METHODS, Method

from conftest import DATA
from helpers import REPO, SSL_METHODS, SSL_TINY, assert_same_weights, cli, weights


def _cfg(method, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


def _losses(run_dir):
    return [(r["step"], {k: v for k, v in r.items() if k.startswith("loss")})
            for r in read_metrics(run_dir) if "kind" not in r]


@pytest.mark.parametrize("method,extra", [
    ("supervised", dict(dataset="digits", batch_size=32)),
    ("gan1d", dict(batch_size=16)),
    ("gan2d", dict(batch_size=64, z_dim=8, g_hidden=16, d_hidden=16, lr_decay="none")),
])
def test_resume_is_exact(tmp_path, method, extra):
    common = dict(log_every=1, ckpt_every=0, image_every=0, eval_at_end=False, **extra)
    straight = train(get_method(method), _cfg(method, steps=12, **common), out=tmp_path / "a", verbose=False)
    train(get_method(method), _cfg(method, steps=5, **common), out=tmp_path / "b", verbose=False)
    resumed = train(get_method(method), _cfg(method, steps=12, **common), resume=tmp_path / "b", verbose=False)
    assert straight.steps == 12 and resumed.steps == 7
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert [s for s, _ in la] == list(range(1, 13))
    assert la == lb  # identical loss sequence, no duplicated or missing step
    ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")
    cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert ca["data"].keys() == cb["data"].keys()  # same data position / sampler state
    for k, v in ca["data"].items():
        assert torch.equal(v, cb["data"][k]) if isinstance(v, torch.Tensor) else v == cb["data"][k]
    for name in ca["method"]["optimizers"]:  # optimizer moments too
        sa, sb = ca["method"]["optimizers"][name]["state"], cb["method"]["optimizers"][name]["state"]
        for pid in sa:
            for k, v in sa[pid].items():
                if isinstance(v, torch.Tensor):
                    assert torch.equal(v, sb[pid][k])


def test_run_directory_artifacts(tmp_path):
    out = tmp_path / "run"
    rc = main(["train", "gan2d", "--out", str(out), "steps=2", "batch_size=32", "z_dim=4", "g_hidden=8", "d_hidden=8",
               "eval_samples=200", "log_every=1", "image_every=1", "ckpt_every=1"])
    assert rc == 0
    for f in ("config.yaml", "metrics.jsonl", "weights.safetensors", "eval.json", "samples.png",
              "checkpoints/last.ckpt", "checkpoints/step_0000001.ckpt"):
        assert (out / f).is_file(), f
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (out / "images").glob("*.png")) == ["samples_0000001.png", "samples_0000002.png"]
    ev = json.loads((out / "eval.json").read_text())
    assert {"modes", "hq_fraction"} <= ev["metrics"].keys() and ev["protocol"]["n_samples"] == 200
    # the TensorBoard file holds both scalars and images
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(out / "tb")).Reload()
    assert "loss_d" in acc.Tags()["scalars"] and "samples" in acc.Tags()["images"]


def test_config_written_before_training_and_existing_dir_refused(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "gan1d", "--out", str(out), "steps=3", "image_every=0"]) == 0
    text = (out / "config.yaml").read_text()
    assert "method: gan1d" in text and "steps: 3" in text
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(["train", "gan1d", "--out", str(out), "steps=3"]) == 2
    assert "exists" in capsys.readouterr().err
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}  # nothing overwritten


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    orig = Method.optimize

    def poisoned(self, name, loss):
        return orig(self, name, loss * float("nan") if self.step == 5 else loss)

    monkeypatch.setattr(Method, "optimize", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match="step 5"):
        train(get_method("supervised"), _cfg("supervised", steps=20, ckpt_every=2, log_every=1, batch_size=16),
              out=out, verbose=False)
    ck = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ck["step"] == 4
    assert all(torch.isfinite(v).all() for v in ck["method"]["modules"]["model"].values())
    # through the CLI: one line, exit code 2
    assert main(["train", "supervised", "--out", str(tmp_path / "nan3"), "steps=20", "batch_size=16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: non-finite loss 'model'") and "step 5" in err[-1]


def test_resume_from_a_periodic_checkpoint_keeps_a_decaying_schedule_exact(tmp_path):
    """gan2d's learning rate decays over `steps`: resuming the same run (same steps) from its step-5 checkpoint
    gives the uninterrupted run's weights and losses (the schedulers' state is in the checkpoint)."""
    import shutil
    common = dict(log_every=1, ckpt_every=5, image_every=0, eval_at_end=False, batch_size=64, z_dim=8,
                  g_hidden=16, d_hidden=16, steps=12)
    straight = train(get_method("gan2d"), _cfg("gan2d", **common), out=tmp_path / "a", verbose=False)
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b)
    shutil.copy(b / "checkpoints" / "step_0000005.ckpt", b / "checkpoints" / "last.ckpt")
    rows = (b / "metrics.jsonl").read_text().splitlines()
    (b / "metrics.jsonl").write_text("".join(r + "\n" for r in rows if json.loads(r)["step"] <= 5))
    resumed = train(get_method("gan2d"), _cfg("gan2d", **common), resume=b, verbose=False)
    assert straight.steps == 12 and resumed.steps == 7
    assert_same_weights(weights(tmp_path / "a"), weights(b))
    assert _losses(tmp_path / "a") == _losses(b)
    lr = load_checkpoint(b / "checkpoints" / "last.ckpt")["method"]["schedulers"]["G"]["_last_lr"][0]
    assert lr == pytest.approx(2e-3 * (1 - 11 / 12), abs=1e-12)   # the last step's rate: the engine steps
                                                                    # schedulers after every step but the last


def test_sigterm_checkpoints_and_resume_matches_uninterrupted(tmp_path):
    # the killed run is given far more steps than it can finish, so the signal always lands mid-run
    args = ["supervised", "dataset=digits", "batch_size=32", "log_every=1", "ckpt_every=0", "eval_at_end=false"]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "latentlab.cli", "train", *args, "steps=1000000", "--out", str(killed)],
                         cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = killed / "metrics.jsonl"
    t0 = time.time()
    while time.time() - t0 < 120:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "--resume" in err
    k = load_checkpoint(killed / "checkpoints" / "last.ckpt")["step"]
    assert 20 <= k < 1_000_000
    n = k + 40  # resume to a total of n steps, and compare with an uninterrupted n-step run
    cli("train", "supervised", "--resume", str(killed), f"steps={n}")
    cli("train", *args, f"steps={n}", "--out", str(tmp_path / "straight"))
    assert_same_weights(weights(killed), weights(tmp_path / "straight"))
    assert _losses(killed) == _losses(tmp_path / "straight")


@pytest.mark.parametrize("method,extra", [("supervised", ["dataset=digits"]),
                                          ("simclr", ["dataset=digits", "width=8", "knn_every=0"])])
def test_load_run_evaluates_without_lightning_or_optimizers(tmp_path, method, extra):
    """Opening a float32 CPU run for evaluation uses engine.run.LocalFabric: no Lightning import and no
    optimizers (the cost of a fresh `latentlab eval`), and the same metrics as under the real Fabric."""
    out = tmp_path / "r"
    cli("train", method, "steps=4", "batch_size=16", "log_every=2", "image_every=0", *extra, "--out", str(out))
    code = ("import json, sys; from latentlab.api import load_run; m = load_run(sys.argv[1]); "
            "print(json.dumps({'lightning': any(k.startswith('lightning') for k in sys.modules), "
            "'optimizers': len(m.optimizers), 'metrics': m.evaluate().metrics}))")
    p = subprocess.run([sys.executable, "-c", code, str(out)], cwd=str(REPO), capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert got["lightning"] is False and got["optimizers"] == 0
    from latentlab.engine import make_fabric, open_run, run_config
    cls = get_method(method)
    ref = open_run(cls, out, fabric=make_fabric(run_config(cls, out))).evaluate().metrics
    assert ref.keys() == got["metrics"].keys()
    for k, v in ref.items():
        assert got["metrics"][k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def test_ddp_two_processes_equal_one_process(tmp_path):
    common = ["dataset=digits", "steps=8", "batch_size=32", "log_every=1", "ckpt_every=0", "eval_at_end=false",
              "channels_last=false"]
    cli("train", "supervised", *common, "--out", str(tmp_path / "one"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "latentlab.cli", "train", "supervised", *common, "devices=2", "strategy=ddp",
                        "--out", str(tmp_path / "two")], cwd=str(REPO), env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(load_checkpoint(tmp_path / "two" / "checkpoints" / "last.ckpt")["rng"]) == 2  # two processes ran
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_shuffled_batches_split_the_global_batch_across_ranks():
    from latentlab.engine.batches import ShuffledBatches
    x = torch.arange(100)
    one = ShuffledBatches({"x": x}, 20, seed=3)
    ranks = [ShuffledBatches({"x": x}, 20, seed=3, rank=r, world=2) for r in range(2)]
    seen = []
    for _ in range(12):  # crosses epoch boundaries
        full = next(one)["x"]
        parts = [next(r)["x"] for r in ranks]
        assert all(len(p) == 10 for p in parts)
        assert torch.equal(torch.cat(parts), full)
        seen.append(full)
    assert sorted(torch.cat(seen[:5]).tolist()) == list(range(100))  # epoch 0 is a permutation
    assert not torch.equal(torch.cat(seen[:5]), torch.cat(seen[5:10]))  # epoch 1 reshuffled


def test_tensorboard_keeps_every_logged_step_across_resume(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    common = dict(log_every=1, ckpt_every=0, image_every=0, batch_size=16)
    train(get_method("gan1d"), _cfg("gan1d", steps=4, **common), out=tmp_path / "r", verbose=False)
    train(get_method("gan1d"), _cfg("gan1d", steps=7, **common), resume=tmp_path / "r", verbose=False)
    acc = EventAccumulator(str(tmp_path / "r" / "tb")).Reload()
    assert [e.step for e in acc.Scalars("loss_d")] == list(range(1, 8))
    assert [e.step for e in acc.Scalars("eval/theta")] == [4, 7]  # each session's final evaluation
    kinds = [(r["step"], r.get("kind")) for r in read_metrics(tmp_path / "r") if "kind" in r]
    assert kinds == [(4, "eval"), (7, "eval")]


_GAN = dict(ngf=8, ndf=8, batch_size=16, max_train=256, num_fixed=16)
SMALL_RUNS = {"supervised": dict(dataset="digits", batch_size=32), "gan1d": dict(batch_size=16),
              "gan2d": dict(batch_size=64, z_dim=8, g_hidden=16, d_hidden=16), "alexnet": dict(batch_size=16, val_every=2),
              **{g: _GAN for g in ("dcgan", "wgan", "wgan_gp", "cgan", "acgan")},
              "vae": dict(dataset="digits", batch_size=16, hidden=16, z_dim=4),
              "multitask": dict(batch_size=16, val_every=2, val_samples=32, eval_batch_size=256),
              "finetune": dict(mode="scratch", dataset="digits", batch_size=16, width=4, num_features=8, val_every=2),
              **{m: dict(source="mnist", target="usps", dataset="usps", batch_size=16, source_samples=64,
                         target_samples=64, val_every=2, val_samples=32, tsne_samples=0, eval_batch_size=256)
                 for m in ("source_only", "dann", "cdan", "mcd", "oracle")},
              "flow": dict(dataset="digits", batch_size=16, depth=2, hidden=8),
              "pix2pix": dict(ngf=4, ndf=4, batch_size=16, max_train=128, num_fixed=4),
              "stylegan": dict(ngf=4, ndf=4, z_dim=8, w_dim=8, n_mlp=2, batch_size=8, max_train=128, num_fixed=16,
                               r1_every=2),
              "cyclegan": dict(ngf=4, ndf=4, n_blocks=1, batch_size=4, max_train=64, pool_size=6, num_fixed=4),
              "ddpm": dict(dataset="digits", batch_size=16, base=8, mults=[1, 2], timesteps=20, sample_steps=5,
                           eval_k=4),
              **{m: dict(dataset="digits", batch_size=16, width=8, num_features=32, knn_every=2, knn_samples=64,
                         eval_at_end=True, **SSL_TINY[m]) for m in SSL_METHODS}}


@pytest.mark.parametrize("precision", ["64-true", "bf16-mixed"])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_under_precision_64_true_and_mixed(tmp_path, method, precision):
    """64-true runs the whole step in float64 (engine/loop.py): every method must run with float64
    networks, losses and state, its monitors inside the step (the SSL k-NN monitor, DeepCluster's k-means
    on its own features) and, for the SSL methods, the final k-NN evaluation on the plain encoder.
    bf16-mixed (autocast; on CUDA also 16-mixed): Fabric refuses gradients through a network's output
    that do not come from fabric.backward, which WGAN-GP's penalty (torch.autograd.grad) needs."""
    kw = {"eval_at_end": False, **SMALL_RUNS[method]}
    from latentlab.data.registry import DATASETS
    config = get_method(method).Config
    for key in ("dataset", "source", "target", "domain_a", "domain_b"):            # every dataset the run reads
        data = kw.get(key, getattr(config, key, None))
        data = DATASETS[data].fetch_as or data if data in DATASETS else data  # generated from another set's files
        if data in ("mnist", "mnist_m", "usps") and not (DATA / data).is_dir():     # files in ../shared/data
            pytest.skip(f"{DATA}/{data} absent")
    cfg = _cfg(method, steps=3, log_every=1, ckpt_every=0, image_every=0, precision=precision, **kw)
    res = train(get_method(method), cfg, out=tmp_path / "r", verbose=False)
    assert res.steps == 3
    assert all(v == v for _, losses in _losses(tmp_path / "r") for v in losses.values())
    if precision != "64-true":
        return
    state = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["method"]
    assert {v.dtype for sd in state["modules"].values() for v in sd.values() if v.is_floating_point()} == {torch.float64}
    assert all(v.dtype == torch.float64 for v in state["extra"].values()
               if isinstance(v, torch.Tensor) and v.is_floating_point())
    if method in SSL_METHODS:
        assert any("knn_acc" in r for r in read_metrics(tmp_path / "r")) and res.eval is not None


def _ddp_pair(tmp_path, method, args):
    """Train ``method`` with 1 process and with 2 gloo processes (torchrun); returns the two run dirs."""
    cli("train", method, *args, "--out", str(tmp_path / "one"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "-m", "latentlab.cli", "train", method, *args, "devices=2", "strategy=ddp",
                        "--out", str(tmp_path / "two")], cwd=str(REPO), env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(load_checkpoint(tmp_path / "two" / "checkpoints" / "last.ckpt")["rng"]) == 2  # two processes ran
    return tmp_path / "one", tmp_path / "two"


SSL_DDP = ["dataset=digits", "batch_size=32", "augment=none", "knn_every=0", "log_every=1", "ckpt_every=0",
           "eval_at_end=false", "channels_last=false"]


@pytest.mark.parametrize("method,extra", [("simclr", []), ("moco", ["head_bn=false", "queue_size=64"]),
                                          ("moco", ["queue_size=64", "shuffle_bn=4"]),
                                          ("npid", ["num_negatives=64"]),
                                          ("npid", ["num_negatives=64", "bank_init=encoder"])])
def test_ssl_training_under_ddp_equals_one_process(tmp_path, method, extra):
    """Whole SSL runs, not just the loss: 2 gloo processes with half the batch each train the same
    weights as 1 process on the full batch (SimCLR gathers its negatives with gradients and its head's
    BatchNorm is global; MoCo enqueues the keys of every process, and every rank starts from the same
    key encoder and queue; with shuffle_bn=4 each process encodes 2 of the 4 groups and the keys are
    shuffled across processes; NPID draws the same bank negatives on every rank, estimates Z over every
    process and updates its bank with every process's embeddings; with bank_init=encoder every process
    fills the whole bank). Views are un-augmented so both runs see the same pixels. precision=64-true
    runs the losses in float64 too: with float32 losses the two runs differ by rounding, and Adam's first
    steps turn rounding in gradients that are zero in exact arithmetic (biases before a BatchNorm) into
    differences of the order of the learning rate."""
    one, two = _ddp_pair(tmp_path, method, [*SSL_DDP, "steps=4", "precision=64-true", *extra])
    if method == "simclr":  # its logged loss is the global-batch loss on every rank (MoCo's is rank 0's half)
        l1, l2 = ([r[1]["loss"] for r in _losses(d)] for d in (one, two))
        assert len(l1) == 4 and l1 == pytest.approx(l2, rel=1e-8)
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    # shuffling BN's running statistics are each process's own groups' (rank 0's are saved), by design
    local = "shuffle_bn=4" in extra
    for k in a:
        if not (local and k.endswith(("running_mean", "running_var", "num_batches_tracked"))):
            torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-8, msg=k)
    if method in ("moco", "npid"):
        e1, e2 = (load_checkpoint(d / "checkpoints" / "last.ckpt")["method"]["extra"] for d in (one, two))
        for k in e1:                                                  # queue; bank and log Z
            torch.testing.assert_close(e2[k], e1[k], rtol=1e-6, atol=1e-8, msg=k)


@pytest.mark.parametrize("method,extra,state", [
    ("moco", ["queue_size=64"], "queue"), ("byol", ["proj_hidden=64"], None), ("dino", ["out_dim=64", "head_hidden=64", "bottleneck=16", "n_local=2"], "center")])
def test_ssl_state_under_ddp_equals_one_process(tmp_path, method, extra, state):
    """What the processes share besides weights: at a negligible learning rate (so Adam's sign-like first
    steps cannot amplify float32 rounding), the BatchNorm running statistics of the online and teacher
    networks (global BN), MoCo's queue (keys of identical key encoders on every rank, gathered) and
    DINO's centre (teacher outputs of every process) equal the 1-process run's."""
    one, two = _ddp_pair(tmp_path, method, [*SSL_DDP, "steps=3", "lr=1e-12", *extra])
    s1, s2 = (load_checkpoint(d / "checkpoints" / "last.ckpt")["method"] for d in (one, two))
    bn = 0
    for mod, sd in s1["modules"].items():
        for k, v in sd.items():
            if k.endswith(("running_mean", "running_var")):
                torch.testing.assert_close(s2["modules"][mod][k], v, rtol=1e-4, atol=1e-6, msg=f"{mod}.{k}")
                bn += 1
    assert bn >= 4                                        # online and teacher heads have BatchNorm
    if state:
        torch.testing.assert_close(s2["extra"][state], s1["extra"][state], rtol=1e-4, atol=1e-6)

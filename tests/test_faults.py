"""Faults and bad input: every failure is one ``error:`` line, exit code 2, and no file changed.

One test per defect of the fault audit (resume, options, atomic and deterministic writes, tracebacks, accepted
nonsense, strict JSON, messages, pictures), through the CLI in a subprocess where the defect is about exit
codes and files, and property tests (hypothesis) that truncate and flip bytes of a checkpoint, a metrics log
and an idx file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REPO, cli
from latentlab.cli import main
from latentlab.config import resolve_config
from latentlab.data import load_dataset
from latentlab.engine import train
from latentlab.engine.checkpoint import load_checkpoint, save_checkpoint
from latentlab.engine.logging import RunLogger, read_log
from latentlab.engine.loop import write_eval
from latentlab.errors import DataError, LatentlabError, NonFiniteLossError
from latentlab.methods import get_method
from latentlab.engine import Method
from latentlab.results import EvalResult

RUN_KEYS = ["steps=40", "ckpt_every=20", "log_every=10", "image_every=0", "eval_at_end=false"]


def _cfg(method: str, **kw):
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in kw.items()})


def hashes(d: Path) -> dict[str, str]:
    """Every file under ``d`` -> its SHA-256 (names and contents: nothing may change on a refused command)."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A finished 40-step gan2d run with checkpoints at 20 and 40 (copied by each test that alters it)."""
    out = tmp_path_factory.mktemp("faults") / "base"
    assert main(["train", "gan2d", "--out", str(out), *RUN_KEYS]) == 0
    return out


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(base_run, d)
    return d


def refused(r, *needles: str) -> str:
    """The command failed with exit code 2 and one ``error:`` line holding every needle, no traceback."""
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error: "), err
    for n in needles:
        assert n in err, (n, err)
    return err


# -- 1. resume validates before it writes ------------------------------------------------------------

def test_resume_drops_a_torn_last_log_line(run):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 41, "loss_d": 1.3')                      # killed mid-write
    r = cli("train", "gan2d", "--resume", str(run), "steps=50", "eval_at_end=false")
    records, torn = read_log(run / "metrics.jsonl")
    assert not torn and records[-1]["step"] == 50 and r.returncode == 0


def test_resume_keeps_a_last_record_that_only_lost_its_newline(run):
    log = run / "metrics.jsonl"
    log.write_bytes(log.read_bytes()[:-1])                          # cut just before the final newline
    want = [r["step"] for r in read_log(log)[0]]
    assert want[-1] == 40 and read_log(log)[1]                     # kept, and flagged for repair
    cli("train", "gan2d", "--resume", str(run), "steps=50", "eval_at_end=false")
    records, unfinished = read_log(log)
    assert [r["step"] for r in records] == want + [50] and not unfinished
    assert log.read_bytes().endswith(b"\n")


def test_resume_refuses_a_damaged_complete_last_line(run):
    log = run / "metrics.jsonl"
    log.write_bytes(log.read_bytes()[:-10] + b"\n")                 # damaged, yet newline-terminated
    before = hashes(run)
    refused(cli("train", "gan2d", "--resume", str(run), "steps=50", check=False), "is not a JSON record")
    assert hashes(run) == before


def test_resume_refuses_a_corrupt_log_line_before_writing(run):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:-5]                                         # a damaged record that is not the last
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = hashes(run)
    refused(cli("train", "gan2d", "--resume", str(run), "steps=50", check=False), "metrics.jsonl: line 2")
    assert hashes(run) == before


def test_resume_refuses_a_key_that_changes_the_checkpoint(run):
    before = hashes(run)
    refused(cli("train", "gan2d", "--resume", str(run), "d_hidden=64", check=False),
            "last.ckpt", "'d_hidden' cannot change on resume", "128", "64")
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("d_hidden: 128", "d_hidden: 64"))
    before = hashes(run)
    refused(cli("train", "gan2d", "--resume", str(run), "steps=50", check=False), "'d_hidden' cannot change")
    refused(cli("eval", str(run), check=False), "last.ckpt: does not fit the networks", "size mismatch")
    assert hashes(run) == before


# -- 2. a run killed before its first checkpoint -------------------------------------------------------

def test_run_killed_before_its_first_checkpoint_resumes_from_step_0(run):
    shutil.rmtree(run / "checkpoints")
    (run / "weights.safetensors").unlink()
    before = hashes(run)
    refused(cli("train", "gan2d", "--out", str(run), *RUN_KEYS, check=False), f"use --resume {run}",
            "from step 0")
    assert hashes(run) == before
    r = cli("train", "gan2d", "--resume", str(run), "steps=20", "eval_at_end=false")
    assert "no checkpoint" in r.stderr and "from step 0" in r.stderr
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["step"] == 20
    assert [rec["step"] for rec in read_log(run / "metrics.jsonl")[0]] == [10, 20]


def test_finished_run_without_checkpoints_is_not_retrained(run):
    shutil.rmtree(run / "checkpoints")
    before = hashes(run)
    refused(cli("train", "gan2d", "--resume", str(run), check=False), "weights.safetensors exists", "not retrained")
    assert hashes(run) == before


def _poison_at(monkeypatch, bad_step: int):
    orig = Method.optimize
    monkeypatch.setattr(Method, "optimize",
                        lambda self, name, loss: orig(self, name, loss * float("nan") if self.step == bad_step else loss))


def test_nonfinite_loss_message_tells_whether_a_checkpoint_exists(tmp_path, monkeypatch):
    _poison_at(monkeypatch, 3)
    with pytest.raises(NonFiniteLossError, match="no checkpoint was written yet"):
        train(get_method("gan2d"), _cfg("gan2d", steps=20, ckpt_every=0, image_every=0), out=tmp_path / "a", verbose=False)
    with pytest.raises(NonFiniteLossError, match=re.escape("the last checkpoint (step 2")):
        train(get_method("gan2d"), _cfg("gan2d", steps=20, ckpt_every=2, image_every=0), out=tmp_path / "b", verbose=False)


# -- 3. options that cannot apply on resume ------------------------------------------------------------

@pytest.mark.parametrize("opt", ["--config", "--out"])
def test_resume_refuses_config_and_out(run, tmp_path, opt):
    (tmp_path / "c.yaml").write_text("steps: 60\n")
    before = hashes(run)
    value = str(tmp_path / "c.yaml") if opt == "--config" else str(tmp_path / "elsewhere")
    refused(cli("train", "gan2d", "--resume", str(run), opt, value, check=False), f"{opt} cannot be used with --resume")
    assert hashes(run) == before and not (tmp_path / "elsewhere").exists()


# -- 4. atomic, deterministic writes -------------------------------------------------------------------

def test_weights_file_is_deterministic_with_the_umask_mode(tmp_path):
    for name in ("once", "again"):                                 # two processes, equal settings: equal tensors
        cli("train", "gan2d", "--out", str(tmp_path / name), *RUN_KEYS)
    a, b = tmp_path / "once" / "weights.safetensors", tmp_path / "again" / "weights.safetensors"
    assert a.read_bytes() == b.read_bytes()                       # ... and equal bytes (header order included)
    umask = os.umask(0)
    os.umask(umask)
    assert b.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p for p in (tmp_path / "again").rglob(".*") if p.is_file()]   # no temporary file left


# Writers that bypass latentlab.fileio (atomic_open and the helpers built on it). The one append-only log,
# metrics.jsonl, appends lines (engine/logging.py: RunLogger._append); its readers drop a torn last line.
BYPASS = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*[\"'][wa]b?[\"']|save_file\(|\.savefig\((?!f\b)"
                    r"|\bim\.save\((?!f\b)|np\.save\((?!f\b)")
TORCH_SAVE = re.compile(r"torch\.save\(.*,\s*(\w+)\)")   # its file argument must be an open file object


def _bypasses(line: str) -> bool:
    if 'open(self.metrics_path, "a")' in line:
        return False
    save = TORCH_SAVE.search(line)
    return bool(BYPASS.search(line)) or bool(save and save.group(1) not in ("f", "fh", "buf"))


def test_every_file_is_written_through_fileio():
    found = []
    for p in sorted((REPO / "src" / "latentlab").rglob("*.py")):
        if p.name == "fileio.py":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            if _bypasses(line):
                found.append(f"{p.relative_to(REPO)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


# -- 5. tracebacks that became errors -----------------------------------------------------------------

def test_out_on_a_file_and_sample_zero(base_run, tmp_path):
    (tmp_path / "f").write_text("x")
    refused(cli("train", "gan2d", "--out", str(tmp_path / "f"), check=False), "is not a directory")
    before = hashes(base_run)
    refused(cli("sample", str(base_run), "--n", "0", "--out", str(tmp_path / "s.png"), check=False), "--n 0")
    assert hashes(base_run) == before and not (tmp_path / "s.png").exists()


def test_unwritable_outputs_are_one_line(base_run, tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    for out, needle in ((tmp_path / "adir", "is a directory"), (tmp_path / "afile" / "x.png", "afile"),
                        (tmp_path / "x.nosuchformat", "unknown image file suffix")):
        refused(cli("sample", str(base_run), "--n", "4", "--out", str(out), check=False), needle)


def test_image_format_follows_the_suffix(tmp_path):
    from PIL import Image
    from latentlab.viz.grid import save_image
    for suffix, fmt in ((".png", "PNG"), (".jpg", "JPEG")):
        save_image(torch.rand(3, 8, 8), tmp_path / f"a{suffix}")
        with Image.open(tmp_path / f"a{suffix}") as im:
            assert im.format == fmt


def test_corrupt_feature_cache_is_a_cache_miss(tmp_path, capsys):
    from latentlab.api import load_run
    from latentlab.eval.representation import run_features
    train(get_method("supervised"), _cfg("supervised", dataset="digits", steps=2, image_every=0, eval_at_end=False),
          out=tmp_path / "s", verbose=False)
    m = load_run(tmp_path / "s")
    _, _, want = run_features(m, max_train=200, max_val=50)
    caches = sorted((tmp_path / "s").glob("features_*.pt"))
    assert len(caches) == 3
    caches[0].write_bytes(b"")                                      # zero bytes
    caches[1].write_bytes(caches[1].read_bytes()[:100])            # truncated
    capsys.readouterr()
    _, _, got = run_features(m, max_train=200, max_val=50)
    assert capsys.readouterr().err.count("unreadable feature cache") == 2
    for part in want:
        assert torch.equal(want[part][0], got[part][0]) and torch.equal(want[part][1], got[part][1])
    _, _, again = run_features(m, max_train=200, max_val=50)      # the caches were written again
    assert capsys.readouterr().err == ""


# -- 6. nonsense that was accepted ---------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_floats_are_refused(tmp_path, value):
    refused(cli("train", "gan2d", "--out", str(tmp_path / "r"), f"lr={value}", check=False),
            "config key 'lr'", "finite")
    assert not (tmp_path / "r").exists()


def test_empty_class_folder_is_refused(tmp_path):
    from PIL import Image
    for c in ("a", "b"):
        (tmp_path / "set" / c).mkdir(parents=True)
    Image.new("L", (6, 6)).save(tmp_path / "set" / "a" / "0.png")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'set' / 'b'}: class folder with no images")):
        load_dataset(str(tmp_path / "set"), "train")


# -- 7. strict JSON ------------------------------------------------------------------------------------

def _strict(text: str):
    def bad(c):
        raise AssertionError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=bad)


def test_eval_json_and_metrics_are_strict_json(tmp_path, base_run):
    write_eval(tmp_path, EvalResult({"kl_modes": float("inf"), "modes": 3, "x": float("nan")}, {"p": 1}), 7)
    d = _strict((tmp_path / "eval.json").read_text())
    assert d["metrics"] == {"kl_modes": None, "modes": 3, "x": None}
    assert d["protocol"]["non_finite"] == {"kl_modes": "inf", "x": "nan"}
    log = RunLogger(tmp_path, 10, 0, resume=False, progress=False)
    log.log(5, {"loss": float("nan"), "ok": 1.0})
    log.close()
    rec = _strict((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["loss"] is None and rec["ok"] == 1.0
    r = cli("eval", str(base_run), "--json")
    _strict(r.stdout.strip().splitlines()[-1])


# -- 8. messages ---------------------------------------------------------------------------------------

def test_yaml_error_names_line_and_column(tmp_path):
    (tmp_path / "bad.yaml").write_text("steps: 10\nlr: [1e-3\n")
    err = refused(cli("train", "gan2d", "--config", str(tmp_path / "bad.yaml"), check=False), "bad.yaml:")
    assert re.search(r"bad\.yaml:\d+:\d+: invalid YAML", err), err


def test_data_messages(tmp_path):
    from latentlab.data.readers import _decode_png, read_idx
    (tmp_path / "e.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.gz: empty file \(0 bytes\)"):
        read_idx(tmp_path / "e.gz", 2049)
    (tmp_path / "z.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(DataError, match="empty once decompressed"):
        read_idx(tmp_path / "z.gz", 2049)
    with pytest.raises(DataError) as e:
        _decode_png(b"not a png at all", "where.png")
    assert "BytesIO" not in str(e.value) and "where.png: corrupt image" in str(e.value)


def test_refused_pickle_gives_no_unsafe_advice(run):
    buf = io.BytesIO()
    torch.save({"step": 1, "method": {}, "rng": [], "evil": Path("/")}, buf)
    (run / "checkpoints" / "last.ckpt").write_bytes(buf.getvalue())        # a plain torch file with a pickle
    before = hashes(run)
    err = refused(cli("eval", str(run), check=False), "last.ckpt: cannot read checkpoint", "refused")
    assert "weights_only" not in err and hashes(run) == before


def test_retrieve_on_points_names_no_internal_function(base_run, tmp_path):
    err = refused(cli("retrieve", str(base_run), "--out", str(tmp_path / "r.png"), check=False))
    assert "get_distribution" not in err and not (tmp_path / "r.png").exists()


# -- 9. pictures a student can read --------------------------------------------------------------------

def test_labelled_rows_write_a_label_beside_every_row():
    from latentlab.viz.grid import labelled_rows, make_grid
    x = torch.ones(6, 1, 8, 8)                                      # white images: only the labels are dark
    out = labelled_rows(x, 3, ["step 1", "step 20"], scale=2)
    width = make_grid(x, nrow=3).shape[2] * 2
    margin = out.shape[2] - width
    assert margin > 20 and out.shape[1] == make_grid(x, nrow=3).shape[1] * 2
    rows = out[:, :, :margin].mean(0)                              # (H, margin)
    half = out.shape[1] // 2
    assert (rows[:half] < 0.5).any() and (rows[half:] < 0.5).any()  # text in both row bands


def test_activations_draw_1d_layers_as_bars_with_a_colour_bar_for_maps(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from latentlab.viz.activations import activations_figure, maps_grid
    calls = {"bar": 0, "colorbar": 0}
    bar, colorbar = Axes.bar, Figure.colorbar
    monkeypatch.setattr(Axes, "bar", lambda self, *a, **k: calls.__setitem__("bar", calls["bar"] + 1) or bar(self, *a, **k))
    monkeypatch.setattr(Figure, "colorbar", lambda self, *a, **k: calls.__setitem__("colorbar", calls["colorbar"] + 1)
                        or colorbar(self, *a, **k))
    acts = [("conv1", torch.randn(1, 4, 6, 6)), ("fc", torch.randn(1, 10)), ("logits", torch.randn(1, 3))]
    img = activations_figure(torch.rand(1, 12, 12), acts)
    assert img.shape[0] == 3 and calls == {"bar": 2, "colorbar": 1}
    ranges = []                                                     # the colour bar spans the maps drawn
    monkeypatch.setattr(Figure, "colorbar", lambda self, im, **k: ranges.append(im.get_clim()) or colorbar(self, im, **k))
    wide = torch.zeros(1, 40, 4, 4)
    wide[0, :32] = torch.linspace(-1, 1, 32 * 16).view(32, 4, 4)
    wide[0, 32:] = 100.0                                             # maps beyond max_maps=32 are not drawn
    activations_figure(torch.rand(1, 12, 12), [("conv", wide)], max_maps=32)
    assert ranges == [(-1.0, 1.0)]
    assert torch.isnan(maps_grid(torch.randn(4, 6, 6))).any()       # padding is background, not data


# -- property tests: truncations and byte flips ---------------------------------------------------------

MUTATION = st.one_of(st.tuples(st.just("cut"), st.floats(0, 0.999)),
                     st.tuples(st.just("flip"), st.floats(0, 0.999), st.integers(1, 255)))


def _mutate(data: bytes, m) -> bytes:
    pos = int(m[1] * len(data))
    if m[0] == "cut":
        return data[:pos]
    b = bytearray(data)
    b[pos] ^= m[2]
    return bytes(b)


PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(m=MUTATION)
def test_any_damaged_checkpoint_is_refused_without_a_change(base_run, tmp_path_factory, m, capsys):
    d = tmp_path_factory.mktemp("ck") / "run"
    shutil.copytree(base_run, d)
    ck = d / "checkpoints" / "last.ckpt"
    ck.write_bytes(_mutate(ck.read_bytes(), m))
    with pytest.raises(LatentlabError, match="last.ckpt"):          # the checksum sees every change
        load_checkpoint(ck)
    before = hashes(d)
    assert main(["eval", str(d)]) == 2
    assert main(["train", "gan2d", "--resume", str(d), "steps=50", "eval_at_end=false"]) == 2
    assert hashes(d) == before
    assert capsys.readouterr().err.count("error: ") == 2


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=MUTATION)
def test_any_damaged_metrics_log_resumes_or_is_refused_without_a_change(base_run, tmp_path_factory, m):
    d = tmp_path_factory.mktemp("log") / "run"
    shutil.copytree(base_run, d)
    log = d / "metrics.jsonl"
    log.write_bytes(_mutate(log.read_bytes(), m))
    before = hashes(d)
    rc = main(["train", "gan2d", "--resume", str(d), "steps=45", "eval_at_end=false"])   # never raises
    assert rc in (0, 2)
    if rc == 2:
        assert hashes(d) == before
    else:
        assert read_log(log)[0][-1]["step"] == 45


def _idx(path: Path, arr: np.ndarray, magic: int) -> None:
    head = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    path.write_bytes(gzip.compress(head + arr.astype(np.uint8).tobytes()))


@PROPERTY
@given(m=MUTATION, which=st.sampled_from(["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]),
       raw=st.booleans())
def test_any_damaged_idx_file_loads_or_is_a_data_error(tmp_path_factory, m, which, raw):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 4)):
        _idx(d / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 7, 5)), 2051)
        _idx(d / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,)), 2049)
    f = d / which
    data = gzip.decompress(f.read_bytes()) if raw else f.read_bytes()    # damage the content or the gzip stream
    f.write_bytes(gzip.compress(_mutate(data, m)) if raw else _mutate(data, m))
    try:
        ds = load_dataset(str(d), "train")
    except DataError as e:
        assert str(d) in str(e) and "\n" not in str(e)
    else:
        assert len(ds) == len(ds.labels) and ds.images.dtype == torch.uint8

"""The notebooks run end to end (notebooks/gans.ipynb and notebooks/families.ipynb): the `parameters` cell is
replaced by tiny settings, the notebook is executed by a fresh kernel of this interpreter, and each section must
draw its figures and print its numbers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import nbclient
import pytest
import nbformat

import latentlab as ll
from conftest import REPO, needs

NOTEBOOK = REPO / "notebooks" / "gans.ipynb"
SECTIONS = ("1. The 1-D GAN", "2. Mode collapse", "3. DCGAN", "4. The WGAN critic")
FAMILIES = REPO / "notebooks" / "families.ipynb"
FAMILY_SECTIONS = ("1. The VAE", "2. A normalizing flow", "3. A diffusion model")


def tiny_parameters(out: Path) -> str:
    return f"STEPS_SCALE = 0.01\nOUT = {str(out)!r}\nSEED = 0\nVERBOSE = False\n"


def inject(nb, source: str) -> None:
    """Replace the source of the cell tagged `parameters` (exactly one, the first code cell)."""
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert len(tagged) == 1 and tagged[0] is first_code, "the first code cell, and only it, is tagged parameters"
    tagged[0].source = source


def python_kernel(root: Path) -> Path:
    """A kernelspec `python3` that starts this interpreter (the venv's), whatever other kernels are installed."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "latentlab test kernel", "language": "python"}))
    return root


def section_of_each_cell(nb) -> list[str | None]:
    """The `## ` heading each cell falls under (None before the first)."""
    current, out = None, []
    for c in nb.cells:
        if c.cell_type == "markdown":
            current = next((l[3:].strip() for l in c.source.splitlines() if l.startswith("## ")), current)
        out.append(current)
    return out


@pytest.mark.parametrize("path", [NOTEBOOK, FAMILIES], ids=["gans", "families"])
def test_stored_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "store the notebook without outputs"
    assert "STEPS_SCALE = 1.0" in code[0].source        # lecture-length runs by default


def execute(path: Path, tmp_path: Path, monkeypatch):
    """The notebook at ``path`` run at tiny settings by a fresh kernel; returns it with its outputs."""
    monkeypatch.setenv("JUPYTER_PATH", str(python_kernel(tmp_path / "jupyter")))   # before any user kernel
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))          # connection files
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))                   # no user profile or startup
    monkeypatch.delenv("MPLBACKEND", raising=False)     # conftest's Agg would keep figures out of the outputs
    # one thread: tiny networks gain nothing from more, and on cores shared with other tests or workers idle
    # threads spinning made the tiny run 2-4x slower
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    nb = nbformat.read(path, as_version=4)
    inject(nb, tiny_parameters(tmp_path / "runs"))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()   # raises on a failing cell
    return nb


def figures_per_section(nb, sections) -> dict[str, int]:
    figures = {s: 0 for s in sections}
    for cell, heading in zip(nb.cells, section_of_each_cell(nb)):
        for o in cell.get("outputs", []):
            if "image/png" in o.get("data", {}):
                figures[next(s for s in sections if heading and heading.startswith(s))] += 1
    return figures


def summary_of(nb) -> dict:
    summary_cell = next(c for c in nb.cells if "summary" in c.metadata.get("tags", []))
    return json.loads("".join(o.text for o in summary_cell.outputs if o.output_type == "stream"))


@needs("mnist")
def test_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nb = execute(NOTEBOOK, tmp_path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    figures = figures_per_section(nb, SECTIONS)
    assert figures == {SECTIONS[0]: 1, SECTIONS[1]: 2, SECTIONS[2]: 1, SECTIONS[3]: 1}, figures

    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "theta = " in text and "modes captured" in text and "last Wasserstein estimate" in text

    summary = summary_of(nb)
    assert summary["gan1d"]["data_mean"] == 4.0 and math.isfinite(summary["gan1d"]["theta"])
    assert set(summary["gan2d"]) == {"ring8_plain", "ring8_r1", "ring8_pacgan4", "grid25_no_r1", "grid25_r1"}
    for name, m in summary["gan2d"].items():
        assert 0 <= m["modes"] <= (8 if name.startswith("ring8") else 25) and 0 <= m["hq_fraction"] <= 1
    assert summary["dcgan"]["steps"] == 15 and summary["dcgan"]["sample_shape"] == [64, 1, 28, 28]
    assert summary["wgan"]["steps"] == 6 and summary["wgan"]["log_records"] == 6
    assert all(math.isfinite(summary["wgan"][k]) for k in ("wasserstein_estimate_first", "wasserstein_estimate_last"))
    # the runs went where the injected OUT said, and can be reopened
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        ["gan1d", "dcgan", "wgan", *summary["gan2d"]])
    assert ll.load(tmp_path / "runs" / "gan1d").step == 30


@needs("mnist")
def test_families_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nb = execute(FAMILIES, tmp_path, monkeypatch)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert figures_per_section(nb, FAMILY_SECTIONS) == {s: 1 for s in FAMILY_SECTIONS}
    s = summary_of(nb)
    assert s["vae"]["steps"] == 60 and s["flow"]["steps"] == 6 and s["ddpm"]["steps"] == 6
    assert s["vae"]["elbo"] < s["vae"]["iwae_100"] < 0                     # L_1 <= L_100 <= log p(x) < 0
    assert s["flow"]["bits_per_dim"] > 0 and s["ddpm"]["bound_bits_per_dim"] > 0 and s["ddpm"]["nfe"] == 20
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddpm", "flow", "vae"]


MULTITASK = REPO / "notebooks" / "multitask.ipynb"
MULTITASK_SECTIONS = ("1. Transfer learning", "2. Task relations", "3. Multi-task learning", "4. Pose")


def test_multitask_notebook_is_clean():
    test_stored_notebook_is_clean(MULTITASK)


@needs("mnist")
@needs("usps")
def test_multitask_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nb = execute(MULTITASK, tmp_path, monkeypatch)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert figures_per_section(nb, MULTITASK_SECTIONS) == {s: 1 for s in MULTITASK_SECTIONS}
    s = summary_of(nb)
    assert set(s["transfer"]) == {"linear", "finetune", "scratch"} and all(0 <= v <= 100 for v in s["transfer"].values())
    assert sum(s["taskonomy"]["ahp"].values()) == pytest.approx(1)
    assert set(s["multimnist"]) == {"uniform", "mgda_ub"}
    assert set(s["pose"]) == {"pose", "landmarks", "visibility"} and all(v >= 0 for v in s["pose"].values())


DOMAIN = REPO / "notebooks" / "domain_adaptation.ipynb"
DOMAIN_SECTIONS = ("1. Source only vs DANN", "2. Choosing a checkpoint", "3. Learning to see by moving")


def test_domain_notebook_is_clean():
    test_stored_notebook_is_clean(DOMAIN)


@needs("mnist")
@needs("usps")
def test_domain_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nb = execute(DOMAIN, tmp_path, monkeypatch)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert figures_per_section(nb, DOMAIN_SECTIONS) == {s: 1 for s in DOMAIN_SECTIONS}
    s = summary_of(nb)
    assert set(s["adaptation"]) == {"source_only", "dann"} and all(0 <= v <= 100 for v in s["adaptation"].values())
    assert set(s["selection"]) == {"source_val", "im", "entropy", "snd", "last", "oracle"}
    assert s["selection"]["oracle"] >= max(s["selection"][r] for r in ("source_val", "im", "entropy", "snd", "last"))
    assert set(s["egomotion"]["motion"]) == {"motion_tx", "motion_ty", "motion_rotation"}
    assert set(s["egomotion"]["few_labels"]) == {"linear", "finetune", "scratch"}


TRANSLATION = REPO / "notebooks" / "translation.ipynb"
TRANSLATION_SECTIONS = ("1. Pix2Pix", "2. CycleGAN", "3. StyleGAN")


def test_translation_notebook_is_clean():
    test_stored_notebook_is_clean(TRANSLATION)


@needs("mnist")
@needs("usps")
@needs("mnist_m")
def test_translation_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nb = execute(TRANSLATION, tmp_path, monkeypatch)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert figures_per_section(nb, TRANSLATION_SECTIONS) == {s: 1 for s in TRANSLATION_SECTIONS}
    s = summary_of(nb)
    assert s["pix2pix"]["steps"] == 10 and 0 < s["pix2pix"]["copy_l1"] < 1 and s["pix2pix"]["psnr"] > 0
    assert s["cyclegan"]["steps"] == 6 and 0 <= s["cyclegan"]["cycle_l1"] <= 1 and s["cyclegan"]["pool"] == 50
    assert s["stylegan"]["num_ws"] == 6 and set(s["stylegan"]["bands"]) == {"coarse", "middle", "fine"}
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cyclegan", "pix2pix", "stylegan"]

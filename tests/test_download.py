"""Downloader and `latentlab data` commands, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import re
import shutil
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from latentlab.errors import DataError
from latentlab.data import DATASETS, DatasetSpec, ensure_verified, fetch, verify
from latentlab.data import commands

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
T10K = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("LATENTLAB_MIRROR", raising=False)


@pytest.fixture
def server(tmp_path):
    """(base URL, served dir laid out as <name>/<file>, list of requested paths); always shut down."""
    root, seen = tmp_path / "served", []
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(5)


def toy(monkeypatch, files: dict[str, bytes], urls: dict[str, list[str]] | None = None) -> DatasetSpec:
    """Register a dataset 'toy' whose checksums are those of `files`."""
    spec = DatasetSpec("toy", "crafted", {r: hashlib.sha256(b).hexdigest() for r, b in files.items()},
                       urls or {r: [] for r in files}, (1, 2, 2), 2, "none")
    monkeypatch.setitem(DATASETS, "toy", spec)
    return spec


def serve(root: Path, name: str, files: dict[str, bytes]) -> None:
    for r, b in files.items():
        (root / name / r).parent.mkdir(parents=True, exist_ok=True)
        (root / name / r).write_bytes(b)


def test_fetch_real_mnist_t10k_from_spec_urls(server, tmp_path, monkeypatch):
    if not (SHARED / "mnist").is_dir():
        pytest.skip("../shared/data/mnist absent")
    base, root, seen = server
    (root / "mnist").mkdir()
    for f in T10K:
        os.symlink(SHARED / "mnist" / f, root / "mnist" / f)
    spec = DATASETS["mnist"]
    monkeypatch.setitem(DATASETS, "mnist", replace(spec, files={f: spec.files[f] for f in T10K},
                                                   urls={f: [base + "/nowhere/" + f, f"{base}/mnist/{f}"] for f in T10K}))
    dest = tmp_path / "data"
    paths = fetch("mnist", dest, progress=False)  # the first URL 404s, the second works
    assert paths == [dest / "mnist" / f for f in T10K]
    assert sorted(os.listdir(dest / "mnist")) == sorted(T10K)  # no temp files left
    assert verify("mnist", dest) == {f: "ok" for f in T10K}
    for f in T10K:
        assert (dest / "mnist" / f).read_bytes() == (SHARED / "mnist" / f).read_bytes()
    n = len(seen)
    assert fetch("mnist", dest, progress=False) == paths and len(seen) == n  # valid files: no requests


def test_fetch_mirror_env_and_file_url(server, tmp_path, monkeypatch):
    base, root, seen = server
    files = {"a.bin": b"alpha" * 100, "sub/b.bin": b"beta"}
    toy(monkeypatch, files)
    serve(root, "toy", files)
    with pytest.raises(DataError, match=r"toy/a\.bin: no public download URL; pass --mirror"):
        fetch("toy", tmp_path / "d0", progress=False)
    fetch("toy", tmp_path / "d1", mirror=base + "/", progress=False)
    assert (tmp_path / "d1" / "toy" / "sub" / "b.bin").read_bytes() == b"beta"
    assert sorted(seen) == ["/toy/a.bin", "/toy/sub/b.bin"]
    monkeypatch.setenv("LATENTLAB_MIRROR", base)
    assert verify("toy", tmp_path / "d2") == {"a.bin": "missing", "sub/b.bin": "missing"}
    fetch("toy", tmp_path / "d2", progress=False)
    assert verify("toy", tmp_path / "d2") == {"a.bin": "ok", "sub/b.bin": "ok"}
    monkeypatch.delenv("LATENTLAB_MIRROR")
    fetch("toy", tmp_path / "d3", mirror=str(root), progress=False)  # a local directory: file:// URLs
    ensure_verified("toy", tmp_path / "d3")


def test_corrupt_download_leaves_nothing(server, tmp_path, monkeypatch):
    base, root, _ = server
    good = {"a.bin": b"good bytes"}
    spec = toy(monkeypatch, good, {"a.bin": [f"{base}/toy/a.bin"]})
    serve(root, "toy", {"a.bin": b"evil bytes"})
    dest = tmp_path / "data"
    with pytest.raises(DataError) as e:
        fetch("toy", dest, progress=False)
    msg = str(e.value)
    assert str(dest / "toy" / "a.bin") in msg and spec.files["a.bin"] in msg
    assert hashlib.sha256(b"evil bytes").hexdigest() in msg and "\n" not in msg
    assert os.listdir(dest / "toy") == []
    with pytest.raises(DataError, match=r"a\.bin missing"):
        ensure_verified("toy", dest)
    # a wrong file already in place is reported, and not replaced by another wrong one
    (dest / "toy" / "a.bin").write_bytes(b"stale")
    assert verify("toy", dest) == {"a.bin": "mismatch"}
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch("toy", dest, progress=False)
    assert os.listdir(dest / "toy") == ["a.bin"] and (dest / "toy" / "a.bin").read_bytes() == b"stale"


def test_valid_file_is_never_refetched_or_overwritten(server, tmp_path, monkeypatch):
    base, root, seen = server
    toy(monkeypatch, {"a.bin": b"good"}, {"a.bin": [f"{base}/toy/a.bin"]})
    serve(root, "toy", {"a.bin": b"evil"})
    (tmp_path / "toy").mkdir()
    p = tmp_path / "toy" / "a.bin"
    p.write_bytes(b"good")
    before = p.stat()
    assert fetch("toy", tmp_path, progress=False) == [p]
    assert seen == [] and p.stat().st_ino == before.st_ino and p.read_bytes() == b"good"


def test_http_errors_and_unknown(server, tmp_path, monkeypatch):
    base, _, _ = server
    toy(monkeypatch, {"a.bin": b"x"}, {"a.bin": [f"{base}/toy/a.bin"]})
    url = re.escape(f"{base}/toy/a.bin")  # the loopback server's address
    with pytest.raises(DataError, match=rf"toy/a\.bin: download failed \({url}: HTTP Error 404"):
        fetch("toy", tmp_path, progress=False)
    assert os.listdir(tmp_path / "toy") == []
    with pytest.raises(DataError, match="nope: unknown dataset; known: digits"):
        fetch("nope", tmp_path)
    assert fetch("digits", tmp_path) == []


# ----------------------------------------------------------------------------- `latentlab data ...`

def run_cli(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="latentlab")
    commands.register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["data", *argv])
    return args.func(args)


def test_data_list(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    shutil.copyfile(__file__, tmp_path / "mnist" / T10K[1])  # presence is all `list` looks at
    assert run_cli("list", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "1x28x28" in lines["mnist"] and "1/4 present" in lines["mnist"]
    assert "0/1 present" in lines["mnist_m"] and "3x32x32" in lines["mnist_m"]
    assert "embedded" in lines["digits"] and "synthetic" in lines["ring8"]
    assert str(tmp_path) in out


def test_data_verify_and_fetch(server, tmp_path, monkeypatch, capsys):
    base, root, _ = server
    toy(monkeypatch, {"a.bin": b"A", "b.bin": b"B"})
    serve(root, "toy", {"a.bin": b"A", "b.bin": b"B"})
    with pytest.raises(DataError, match=r"toy: a\.bin missing, b\.bin missing \(run `latentlab data fetch toy`\)"):
        run_cli("verify", "toy", "--data-dir", str(tmp_path))
    assert run_cli("fetch", "toy", "--mirror", base, "--data-dir", str(tmp_path), "--quiet") == 0
    assert run_cli("verify", "toy", "--data-dir", str(tmp_path)) == 0
    assert capsys.readouterr().out.count("ok") == 4
    (tmp_path / "toy" / "b.bin").write_bytes(b"corrupt")
    with pytest.raises(DataError, match=r"b\.bin mismatch"):
        run_cli("verify", "toy", "--data-dir", str(tmp_path))
    assert "mismatch" in capsys.readouterr().out
    with pytest.raises(DataError, match="unknown dataset"):
        run_cli("verify", "cifar11")
    with pytest.raises(SystemExit):
        run_cli("fetch")  # NAME is required


def test_data_verify_real_mnist(capsys):
    if not (SHARED / "mnist").is_dir():
        pytest.skip("../shared/data/mnist absent")
    assert run_cli("verify", "mnist", "--data-dir", str(SHARED)) == 0
    assert capsys.readouterr().out.count("ok  ") == 4

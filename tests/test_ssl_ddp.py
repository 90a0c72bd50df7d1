"""NT-Xent under DDP: 2 CPU processes (gloo) gathering embeddings with gradients give exactly the
1-process loss and parameter gradients on the concatenated batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from latentlab.losses import nt_xent


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).double()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 6, generator=g, dtype=torch.float64), torch.randn(8, 6, generator=g, dtype=torch.float64)


def _worker(rank: int, world: int, port: int, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_model())
        x1, x2 = _data()
        per = len(x1) // world
        sl = slice(rank * per, (rank + 1) * per)
        h1, h2 = model(x1[sl]), model(x2[sl])                 # local half of the batch
        loss = nt_xent(h1, h2, temperature=0.3, gather=True)
        loss.backward()                                        # DDP averages the gradients
        torch.save({"loss": loss.detach(), "grads": [p.grad for p in model.parameters()]}, f"{out}.{rank}")
        dist.barrier()                                         # both ranks done before teardown
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip interpreter teardown: gloo's threads can abort it ("terminate called ...", SIGABRT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gathered_nt_xent_matches_single_process(tmp_path):
    model = _model()
    x1, x2 = _data()
    loss = nt_xent(model(x1), model(x2), temperature=0.3)
    loss.backward()
    ref = [p.grad for p in model.parameters()]
    out = str(tmp_path / "r")
    mp.start_processes(_worker, args=(2, _free_port(), out), nprocs=2, join=True, start_method="spawn")
    for rank in range(2):
        r = torch.load(f"{out}.{rank}", weights_only=True)
        assert torch.allclose(r["loss"], loss.detach(), atol=1e-12, rtol=0)
        for g, gr in zip(r["grads"], ref):
            assert torch.allclose(g, gr, atol=1e-12, rtol=1e-10)
    # without gathering, each process sees only its own negatives: a different (smaller) loss
    half = nt_xent(model(x1[:4]), model(x2[:4]), temperature=0.3)
    assert not torch.allclose(half, loss)

"""Collectives with gradients, 2 CPU processes (gloo): NT-Xent gathering embeddings and GlobalBatchNorm
summing statistics give exactly the 1-process values and gradients on the concatenated batch."""

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


def _in_group(rank: int, world: int, port: int, out: str, body):
    """Run ``body(rank, world)`` in a gloo process group and save what it returns to ``out.rank``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(body(rank, world), f"{out}.{rank}")
        dist.barrier()                                         # both ranks done before teardown
    finally:
        dist.destroy_process_group()
    os._exit(0)  # skip interpreter teardown: gloo's threads can abort it ("terminate called ...", SIGABRT)


def _spawn(body, out: str) -> list[dict]:
    mp.start_processes(_in_group, args=(2, _free_port(), out, body), nprocs=2, join=True, start_method="spawn")
    return [torch.load(f"{out}.{k}", weights_only=True) for k in range(2)]


def _nt_xent_body(rank: int, world: int) -> dict:
    model = torch.nn.parallel.DistributedDataParallel(_model())
    x1, x2 = _data()
    per = len(x1) // world
    sl = slice(rank * per, (rank + 1) * per)
    h1, h2 = model(x1[sl]), model(x2[sl])                     # local half of the batch
    loss = nt_xent(h1, h2, temperature=0.3, gather=True)
    loss.backward()                                            # DDP averages the gradients
    return {"loss": loss.detach(), "grads": [p.grad for p in model.parameters()]}


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
    for r in _spawn(_nt_xent_body, str(tmp_path / "r")):
        assert torch.allclose(r["loss"], loss.detach(), atol=1e-12, rtol=0)
        for g, gr in zip(r["grads"], ref):
            assert torch.allclose(g, gr, atol=1e-12, rtol=1e-10)
    # without gathering, each process sees only its own negatives: a different (smaller) loss
    half = nt_xent(model(x1[:4]), model(x2[:4]), temperature=0.3)
    assert not torch.allclose(half, loss)


def _bn_data():
    g = torch.Generator().manual_seed(2)
    return torch.randn(8, 3, 2, 2, generator=g, dtype=torch.float64), torch.randn(8, 3, 2, 2, generator=g,
                                                                                  dtype=torch.float64)


def _bn_body(rank: int, world: int) -> dict:
    from latentlab.nets.global_bn import GlobalBatchNorm
    x, w = _bn_data()
    per = len(x) // world
    xs = x[rank * per:(rank + 1) * per].clone().requires_grad_(True)
    bn = GlobalBatchNorm(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(3))
    y = bn(xs)
    (y * w[rank * per:(rank + 1) * per]).sum().backward()       # this process's part of the total loss
    return {"y": y.detach(), "dx": xs.grad, "dw": bn.weight.grad, "db": bn.bias.grad,
            "mean": bn.running_mean, "var": bn.running_var}


def test_global_batchnorm_across_processes_equals_batchnorm_on_the_whole_batch(tmp_path):
    """SimCLR's global BN: statistics, outputs, input and parameter gradients and running statistics of
    2 processes with half the batch each equal nn.BatchNorm2d on the concatenated batch."""
    x, w = _bn_data()
    x = x.clone().requires_grad_(True)
    bn = torch.nn.BatchNorm2d(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(3))
    y = bn(x)
    (y * w).sum().backward()
    r = _spawn(_bn_body, str(tmp_path / "bn"))
    close = dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]), y.detach(), **close)
    torch.testing.assert_close(torch.cat([r[0]["dx"], r[1]["dx"]]), x.grad, **close)
    torch.testing.assert_close(r[0]["dw"] + r[1]["dw"], bn.weight.grad, **close)   # DDP would sum/average these
    torch.testing.assert_close(r[0]["db"] + r[1]["db"], bn.bias.grad, **close)
    for k in range(2):
        torch.testing.assert_close(r[k]["mean"], bn.running_mean, **close)
        torch.testing.assert_close(r[k]["var"], bn.running_var, **close)
    # per-process BN (what DDP does without it) normalises each half by its own statistics
    half = torch.nn.BatchNorm2d(3).double()(x[:4].detach())
    whole = (y.detach()[:4] - bn.bias.detach().view(1, 3, 1, 1)) / bn.weight.detach().view(1, 3, 1, 1)
    assert not torch.allclose(half, whole, atol=1e-3)


def test_global_batchnorm_is_batchnorm_in_one_process():
    from latentlab.nets.global_bn import convert_global_bn, GlobalBatchNorm
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                              torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.BatchNorm1d(3, affine=False)))
    import copy
    ref = copy.deepcopy(net)
    conv = convert_global_bn(net)
    assert sum(isinstance(m, GlobalBatchNorm) for m in conv.modules()) == 2
    assert not any(type(m) is torch.nn.BatchNorm1d for m in conv.modules())
    assert conv.state_dict().keys() == ref.state_dict().keys()       # checkpoints load either way
    x = torch.randn(16, 4)
    torch.testing.assert_close(conv(x), ref(x), atol=0, rtol=0)
    conv.eval(), ref.eval()
    torch.testing.assert_close(conv(x), ref(x), atol=0, rtol=0)

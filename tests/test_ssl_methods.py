"""Every self-supervised method: tiny overfit, exact resume with its queue/bank/teacher, pretext details."""

from __future__ import annotations

import pytest
import torch

from latentlab.config import resolve_config
from latentlab.engine import make_fabric, train
from latentlab.engine.checkpoint import load_checkpoint
from latentlab.methods import METHODS, get_method
from latentlab.methods._ssl import shared_generator

from helpers import SSL_METHODS as SSL
from helpers import SSL_TINY as TINY
from helpers import assert_same_weights, weights


STEPS = {"dino": 40, "context": 100, "deepcluster": 100, "temporal_order": 100, "s4l": 60}
OVERFIT = {"moco": dict(queue_size=48), "dino": dict(base_momentum=0.9, lr=1e-3), "deepcluster": dict(reassign_every=1000)}


def _cfg(method, **kw):
    base = dict(dataset="digits", batch_size=16, knn_every=0, image_every=0, log_every=1, width=8,
                num_features=32, lr=3e-3, **TINY[method])
    base.update(kw)
    return resolve_config(get_method(method).Config, method, None, {k: str(v) for k, v in base.items()})


def test_every_self_supervised_method_is_registered():
    assert set(SSL) <= set(METHODS)
    for m in SSL:
        assert METHODS[m].paper and METHODS[m].summary and METHODS[m].encoder is not None


@pytest.mark.parametrize("method", SSL)
def test_tiny_overfit_loss_decreases(method, outcome_seed):
    torch.manual_seed(outcome_seed)
    cfg = _cfg(method, augment="none", steps=STEPS.get(method, 24), eval_at_end=False, seed=outcome_seed,
               **OVERFIT.get(method, {}))
    m = get_method(method)(cfg)
    m.setup(make_fabric(cfg))
    losses = []
    for step in range(STEPS.get(method, 24)):     # a pool of 4 fixed batches (64 images), cycled
        i = torch.arange(16) + 16 * (step % 4)
        if method in ("temporal_order", "egomotion", "autoencoder"):   # fixed clips / motions / masks: 4 seeds, cycled
            torch.manual_seed(step % 4)
        m.step = step
        losses.append(m.training_step({"x": m.train_set.images[i], "y": m.train_set.labels[i], "i": i}, step)["loss"])
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert all(map(lambda v: v == v, losses)) and last < 0.9 * first, (method, losses)


@pytest.mark.parametrize("method,state", [("moco", "queue"), ("npid", "bank"), ("pirl", "log_z"), ("byol", None),
                                          ("dino", "center"), ("deepcluster", "pseudo_labels")])
def test_resume_is_exact_with_queue_bank_and_teacher(tmp_path, method, state):
    common = dict(ckpt_every=0, eval_at_end=False, **({"schedule_steps": 6} if method in ("byol", "dino") else {}))
    train(get_method(method), _cfg(method, steps=6, **common), out=tmp_path / "a", verbose=False)
    train(get_method(method), _cfg(method, steps=3, **common), out=tmp_path / "b", verbose=False)
    train(get_method(method), _cfg(method, steps=6, **common), resume=tmp_path / "b", verbose=False)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert_same_weights(wa, wb)
    assert any(k.startswith(("key_", "target_", "teacher_")) for k in wa) or method in ("npid", "pirl", "deepcluster")
    if state:
        ca = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.ckpt")["method"]["extra"][state]
        cb = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.ckpt")["method"]["extra"][state]
        assert torch.equal(ca, cb)


def test_jigsaw_permutations_follow_algorithm_1():
    """Noroozi & Favaro's Algorithm 1 (``mean``): each next permutation maximises the summed Hamming distance
    to the chosen ones; ``min`` maximises the minimum distance (min Hamming >= 6 where random sets have less)."""
    import itertools
    from latentlab.methods.jigsaw import maximal_hamming_permutations, min_hamming
    ham = lambda a, b: sum(u != v for u, v in zip(a, b))
    allp = list(itertools.permutations(range(5)))
    p = maximal_hamming_permutations(12, 5, seed=3).tolist()
    for i in range(1, len(p)):                                     # checked against every permutation of 5
        best = max(sum(ham(q, c) for c in p[:i]) for q in allp if list(q) not in p[:i])
        assert sum(ham(p[i], c) for c in p[:i]) == best
    for sel in ("mean", "min"):
        q = maximal_hamming_permutations(100, 9, seed=0, selection=sel)
        assert q.shape == (100, 9) and len({tuple(r) for r in q.tolist()}) == 100
        assert all(sorted(r) == list(range(9)) for r in q.tolist())
        assert torch.equal(q, maximal_hamming_permutations(100, 9, seed=0, selection=sel))
    g = torch.Generator().manual_seed(0)
    random_set = torch.stack([torch.randperm(9, generator=g) for _ in range(100)])
    assert min_hamming(maximal_hamming_permutations(100, 9, seed=0, selection="min")) >= 6 > min_hamming(random_set)


def test_deepcluster_kmeans_recovers_blobs():
    from latentlab.methods.deepcluster import kmeans
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.3 * torch.randn(50, 2, generator=g) for c in centers])
    assign, _ = kmeans(x, 3, 10, torch.Generator().manual_seed(1))
    for c in range(3):
        assert assign[c * 50:(c + 1) * 50].unique().numel() == 1
    assert assign.unique().numel() == 3


def test_deepcluster_kmeans_leaves_no_cluster_empty():
    """k above the number of blobs, centroids seeded on duplicates: empty clusters arise at every iteration and
    are split off non-empty ones (DeepCluster, Sec. 3.3), so all k are used at the end."""
    from latentlab.methods.deepcluster import kmeans
    x = torch.cat([torch.zeros(40, 2), torch.full((40, 2), 5.0), torch.tensor([[0.0, 5.0]]).repeat(40, 1)])
    x = x + 1e-3 * torch.randn(len(x), 2, generator=torch.Generator().manual_seed(0))
    for seed in range(5):
        assign, c = kmeans(x, 12, 5, torch.Generator().manual_seed(seed))
        assert torch.bincount(assign, minlength=12).min() >= 1 and torch.isfinite(c).all()


def test_s4l_uses_labels_per_class_from_train_only():
    m = get_method("s4l")(_cfg("s4l", labels_per_class=3))
    y = m.train_set.labels[m.labeled_idx]
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 3))


@pytest.mark.parametrize("method,head", [("moco", "projector"), ("npid", "projector"), ("pirl", "f_head")])
def test_head_bn_separates_embeddings_that_a_plain_head_leaves_parallel(method, head):
    import torch.nn.functional as F
    cos = {}
    for bn in (False, True):
        torch.manual_seed(0)
        cfg = _cfg(method, head_bn=bn, eval_at_end=False, width=32, num_features=128)
        m = get_method(method)(cfg)
        m.setup(make_fabric(cfg))
        with torch.no_grad():
            q = F.normalize(getattr(m, head)(m.backbone(m.prepare_images(m.train_set.images[:64]))), dim=1)
        cos[bn] = (q @ q.t()).mean().item()
    assert cos[False] > 0.98 and cos[True] < 0.8, cos


def test_moco_shuffle_bn_normalises_each_key_with_another_group_of_images():
    """shuffle_bn=2: the keys are the key encoder applied to 2 shuffled halves (BN statistics per half),
    put back in query order; without shuffling (shuffle_bn=1) BN spans the whole batch."""
    keys = {}
    for groups in (1, 2):
        torch.manual_seed(0)
        cfg = _cfg("moco", shuffle_bn=groups, augment="none", queue_size=64, eval_at_end=False)
        m = get_method("moco")(cfg)
        m.setup(make_fabric(cfg))
        x = m.prepare_images(m.train_set.images[:16])
        kb, kp = m.key_backbone, m.key_projector
        perm = torch.randperm(16, generator=shared_generator(cfg.seed, 5))   # step 5's shuffle
        with torch.no_grad():
            whole = kp(kb(x))
            halves = torch.cat([kp(kb(x[perm[:8]])), kp(kb(x[perm[8:]]))])[torch.argsort(perm)]
        m.training_step({"x": m.train_set.images[:16], "i": torch.arange(16)}, 5)
        keys[groups] = m.queue[:16].clone()
        ref = whole if groups == 1 else halves
        torch.testing.assert_close(keys[groups], torch.nn.functional.normalize(ref, dim=1))
    assert not torch.allclose(keys[1], keys[2], atol=1e-3)    # the groups' statistics differ from the batch's
    with pytest.raises(Exception, match="shuffle_bn"):
        _cfg("moco", shuffle_bn=3)                             # must divide the batch (16)
    with pytest.raises(Exception, match="multiple of devices"):
        _cfg("moco", shuffle_bn=2, devices=4)                  # each process encodes whole groups


@pytest.mark.parametrize("method,teacher", [("byol", "target_backbone"), ("moco", "key_projector"),
                                            ("dino", "teacher_head")])
def test_teachers_follow_the_precision_setting(tmp_path, method, teacher):
    """precision=64-true trains the online networks in float64; the EMA teachers (not trained by
    gradients, so not set up by Fabric) must be converted too, or they would average float64 weights into
    float32 and encode in float32. Parameter-free modules (the augmentation pipeline) stay untouched."""
    cfg = _cfg(method, steps=2, precision="64-true", augment="none", eval_at_end=False, ckpt_every=0)
    train(get_method(method), cfg, out=tmp_path / "r", verbose=False)
    mods = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["method"]["modules"]
    dtypes = {k: {v.dtype for n, v in sd.items() if v.is_floating_point()} for k, sd in mods.items()}
    assert dtypes["backbone"] == {torch.float64}
    assert dtypes[teacher] == {torch.float64}, dtypes
    m = get_method(method)(cfg)
    m.setup(make_fabric(cfg))
    x = m.prepare_images(m.train_set.images[:4])
    assert getattr(m, teacher).__class__.__name__ == "_FabricModule" and m.view.__class__.__name__ == "Sequential"
    with torch.no_grad():                                 # float32 in, float64 inside, float32 out
        enc = m.target_backbone if method == "byol" else m.key_backbone if method == "moco" else m.teacher_backbone
        ref = enc.module.double()(x.double())
        out = enc(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref.float(), rtol=0, atol=0)


@pytest.mark.parametrize("precision,dtype", [("32-true", torch.float32), ("64-true", torch.float64)])
def test_precision_64_true_runs_the_losses_and_method_state_in_float64(tmp_path, monkeypatch, precision, dtype):
    """Fabric casts each network's output back to float32; under 64-true the engine runs the whole step in
    float64, so the loss sees float64 embeddings, and the floating method state (the bank, here) is float64."""
    import latentlab.methods.npid as npid
    seen, loss = [], npid.bank_loss
    monkeypatch.setattr(npid, "bank_loss", lambda m, q, p, n: seen.append((q.dtype, p.dtype, n.dtype)) or loss(m, q, p, n))
    cfg = _cfg("npid", steps=2, precision=precision, bank_init="encoder", num_negatives=16, augment="none",
               eval_at_end=False, ckpt_every=0)
    train(get_method("npid"), cfg, out=tmp_path / "r", verbose=False)
    assert seen == [(dtype,) * 3] * 2
    extra = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["method"]["extra"]
    assert extra["bank"].dtype == dtype and extra["log_z"].dtype == torch.float64


def test_randbit_bits_are_a_label_free_hash_of_the_pixels():
    from latentlab.data import load_dataset
    from latentlab.data.randbit import image_bits, with_bits
    ds = load_dataset("digits", "train")
    b = image_bits(ds.images, 6)                                       # (N, 6) in {0, 1}
    assert b.shape == (len(ds), 6) and set(b.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(image_bits(ds.images[100:110], 6), b[100:110])  # per image, not per batch
    assert (b.mean(0) - 0.5).abs().max() < 0.05                        # each bit fair
    for c in range(10):                                                # and unrelated to the digit
        assert (b[ds.labels == c].mean(0) - 0.5).abs().max() < 0.15, c
    ints = (b * 2 ** torch.arange(6)).sum(1)
    assert ints.unique().numel() == 64
    x = torch.rand(3, 1, 5, 5)
    y = with_bits(x, b[:3])
    assert y.shape == (3, 7, 5, 5) and torch.equal(y[:, :1], x)
    assert torch.equal(y[:, 1:], b[:3, :, None, None].expand(3, 6, 5, 5))
    with pytest.raises(ValueError, match="uint8"):
        image_bits(x, 2)


@pytest.mark.parametrize("method", ["simclr", "rotnet"])
def test_randbit_views_share_constant_bit_channels(tmp_path, method):
    from latentlab.data.randbit import image_bits
    from latentlab.api import load_run
    cfg = _cfg(method, randbit=3, steps=3, eval_at_end=False, ckpt_every=0)
    m = get_method(method)(cfg)
    m.setup(make_fabric(cfg))
    x = m.train_set.images[:8]
    v1, v2 = m.views(x)
    assert v1.shape == (8, 4, 8, 8)
    bits = image_bits(x, 3)[:, :, None, None].expand(8, 3, 8, 8)
    assert torch.equal(v1[:, 1:], bits) and torch.equal(v2[:, 1:], bits)   # shared by both views
    assert not torch.equal(v1[:, :1], v2[:, :1])                           # the image part is augmented
    assert torch.equal(m.prepare_eval(x)[:, 1:], bits)
    assert m.images()["views"].shape[1] == 1                               # pictures show the image only
    train(get_method(method), cfg, out=tmp_path / "r", verbose=False)
    run = load_run(tmp_path / "r")                                         # the 4-channel encoder reloads
    assert run.encoder().forward_features(run.prepare_eval(x)).shape == (8, 32)


def test_rotnet_transform_set_labels_each_symmetry_of_the_square():
    from latentlab.methods.rotnet import transform_set
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    xs, y = transform_set(x)                                             # the paper's 4 rotations
    assert xs.shape == (8, 3, 5, 5) and y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for k in range(4):
        assert torch.equal(xs[2 * k:2 * k + 2], torch.rot90(x, k, dims=(2, 3)))
    xs, y = transform_set(x, (0, 90, 180, 270), mirror=True)             # D4: 8 distinct copies
    assert y.tolist() == [t for t in range(8) for _ in range(2)]
    assert torch.equal(xs[2:4], x.flip(3)) and torch.equal(xs[6:8], torch.rot90(x, 1, dims=(2, 3)).flip(3))
    assert len({tuple(c.flatten().tolist()) for c in xs[::2]}) == 8
    xs, y = transform_set(x, (0,), mirror=True)                          # mirror prediction
    assert torch.equal(xs, torch.cat([x, x.flip(3)])) and y.tolist() == [0, 0, 1, 1]
    # 45 degrees, counter-clockwise as rot90: a blob 4 px right of the centre moves up and right by 4/sqrt(2)
    r, c = torch.meshgrid(torch.arange(13.0), torch.arange(13.0), indexing="ij")
    blob = torch.exp(-((r - 6) ** 2 + (c - 10) ** 2) / 2)[None, None]
    xs, _ = transform_set(blob, (0, 45, 90, 135))
    twice, _ = transform_set(xs[1:2], (45,))
    com = lambda im: torch.stack([(im * r).sum() / im.sum(), (im * c).sum() / im.sum()])   # noqa: E731
    d = 4 / 2 ** 0.5
    for img, want in ((xs[1, 0], (6 - d, 6 + d)), (xs[2, 0], (2, 6)), (xs[3, 0], (6 - d, 6 - d)),
                      (twice[0, 0], (2, 6))):
        torch.testing.assert_close(com(img), torch.tensor(want, dtype=torch.float32), atol=0.1, rtol=0)


def test_rotnet_angles_and_mirror_set_the_head_and_are_validated():
    for angles, mirror, t in (([0, 180], False, 2), ([0, 45, 90, 135, 180, 225, 270, 315], False, 8),
                              ([0], True, 2), ([0, 90, 180, 270], True, 8)):
        cfg = _cfg("rotnet", angles=angles, mirror=mirror, eval_at_end=False)
        m = get_method("rotnet")(cfg)
        m.setup(make_fabric(cfg))
        assert m.rot_head.out_features == t == cfg.num_transforms
        out = m.training_step({"x": m.train_set.images[:16], "i": torch.arange(16)}, 0)
        assert out["loss"] == out["loss"] and 0 <= out["rot_acc"] <= 1
    for bad, match in ((dict(angles=[0]), "fewer than 2"), (dict(angles=[0, 0]), "repeat"),
                       (dict(angles=[0, 30]), "not one of")):
        with pytest.raises(Exception, match=match):
            _cfg("rotnet", **bad)


def test_npid_bank_init_encoder_fills_every_row_at_the_first_step_only():
    import torch.nn.functional as F
    runs = {}
    for init in ("random", "encoder"):
        torch.manual_seed(0)
        cfg = _cfg("npid", bank_init=init, augment="none", eval_at_end=False)
        m = get_method("npid")(cfg)
        m.setup(make_fabric(cfg))
        bank0 = m.bank.clone()
        with torch.no_grad():                       # the reference: each chunk's embeddings, BN in train mode
            ref = torch.cat([F.normalize(m.projector(m.backbone(m.prepare_eval(m.train_set.images[i:i + 16]))), dim=1)
                             for i in range(0, len(m.bank), 16)])
        for mod in (m.backbone, m.projector):         # the reference pass moved BN statistics: reset them
            for mm in mod.modules():
                if isinstance(mm, torch.nn.modules.batchnorm._BatchNorm):
                    mm.reset_running_stats()
        i = torch.arange(16) + 32
        m.training_step({"x": m.train_set.images[i], "i": i}, 0)
        rest = torch.ones(len(m.bank), dtype=torch.bool)
        rest[i] = False
        runs[init] = (m, bank0, ref, rest)
    m, bank0, ref, rest = runs["random"]
    assert torch.equal(m.bank[rest], bank0[rest])                      # the paper: random rows stay
    m, bank0, ref, rest = runs["encoder"]
    torch.testing.assert_close(m.bank[rest], ref[rest], atol=1e-5, rtol=0)
    assert (F.cosine_similarity(bank0, ref) < 0.5).all()
    # the fill leaves the running statistics (the projector's BN) as a plain step leaves them
    bufs = [dict(mm.named_buffers()) for mm in (runs["random"][0].projector, m.projector)]
    assert bufs[0].keys() == bufs[1].keys() and any(k.endswith("running_mean") for k in bufs[0])
    for k in bufs[0]:
        torch.testing.assert_close(bufs[0][k], bufs[1][k], msg=k)
    before = m.bank.clone()
    m.training_step({"x": m.train_set.images[:16], "i": torch.arange(16)}, 1)
    assert torch.equal(m.bank[16:], before[16:])                        # no refill after the first step

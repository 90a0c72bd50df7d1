"""``latentlab retrieve RUN_DIR``: L2 nearest training images of test queries, feature vs pixel space."""

from __future__ import annotations

import torch

from ..errors import LatentlabError
from ._common import open_run, parse_ints, read_image, write_picture


def cmd_retrieve(a) -> int:
    from ..data import load_dataset
    from ..eval.retrieval import l2_neighbours, subsample
    from ..eval.representation import descriptors, pixels
    from ..viz.retrieval import annotate_panel, retrieval_panel
    m = open_run(a.run_dir)
    train = load_dataset(m.cfg.dataset, "train", m.cfg.data_dir)
    test = load_dataset(m.cfg.dataset, "test", m.cfg.data_dir)
    gi = subsample(len(train), a.n_gallery, a.seed)
    gx, gy = train.images[gi], train.labels[gi]
    if a.image:
        c, h, w = train.shape
        qx = torch.stack([read_image(p, c, (h, w)) for p in a.image])
        qy = torch.full((len(qx),), -1, dtype=torch.long)                # unknown class: all frames red
    else:
        qi = parse_ints(a.query, "query")
        if qi is None:
            qi = subsample(len(test), a.n_queries, a.seed + 1).tolist()
        bad = [i for i in qi if not 0 <= i < len(test)]
        if bad:
            raise LatentlabError(f"--query {bad}: out of range, test split has {len(test)} images")
        qx, qy = test.images[qi], test.labels[qi]
    if a.k > len(gx):
        raise LatentlabError(f"--k {a.k} exceeds the gallery size {len(gx)}")
    gf = descriptors(m, gx, a.layer)
    qf = descriptors(m, qx, a.layer)
    _, fnn = l2_neighbours(qf, gf, a.k)
    _, pnn = l2_neighbours(pixels(qx), pixels(gx), a.k)
    panel = retrieval_panel(qx, qy, fnn, pnn, gx, gy)
    panel = annotate_panel(panel, a.k, 48 + 6, 16, f"({a.layer or 'penultimate'}, {gf.shape[1]}-d)")
    write_picture(panel, a.out, a.run_dir, "viz/retrieval", m.step)
    if not a.image:
        fm = (gy[fnn] == qy[:, None]).float().mean().item()
        pm = (gy[pnn] == qy[:, None]).float().mean().item()
        print(f"these {len(qx)} queries: precision@{a.k} feature {fm:.3f}, pixel {pm:.3f} "
              f"(gallery: {len(gx)} train images; `latentlab eval RUN --protocol retrieval` for mAP)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("retrieve", help="nearest training images in feature space beside pixel space")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    s.add_argument("--query", help="comma-separated test indices (default: --n-queries seeded ones)")
    s.add_argument("--image", nargs="+", help="query picture file(s) instead of test images")
    s.add_argument("--n-queries", type=int, default=8)
    s.add_argument("--k", type=int, default=6, help="neighbours shown per space")
    s.add_argument("--layer", help="descriptor layer by name (named_modules; default: penultimate)")
    s.add_argument("--n-gallery", type=int, default=10000, help="train images searched (seeded subset)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_retrieve)

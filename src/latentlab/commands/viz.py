"""``latentlab viz filters|activations|embedding|correlate``: look inside any run with an encoder."""

from __future__ import annotations

import torch

from ..errors import LatentlabError
from ._common import open_run, parse_ints, read_image, write_picture


def cmd_filters(a) -> int:
    from ..eval.representation import get_encoder
    from ..viz.filters import filter_grid, first_conv
    m = open_run(a.run_dir)
    enc = get_encoder(m)
    name, conv = first_conv(enc)
    print(f"{name}: {tuple(conv.weight.shape)} kernels")
    write_picture(filter_grid(enc, scale=a.scale), a.out, a.run_dir, "viz/filters", m.step)
    return 0


def _input_image(m, a) -> tuple[torch.Tensor, str]:
    from ..data import load_dataset
    test = load_dataset(m.cfg.dataset, "test", m.cfg.data_dir)
    c, h, w = test.shape
    if a.image:
        return read_image(a.image, c, (h, w))[None], a.image
    if not 0 <= a.index < len(test):
        raise LatentlabError(f"--index {a.index} out of range: test split has {len(test)} images")
    return test.images[a.index:a.index + 1], f"test image {a.index} (class {int(test.labels[a.index])})"


def cmd_activations(a) -> int:
    from ..viz import activations as act
    from ..eval.representation import get_encoder
    m = open_run(a.run_dir)
    enc = get_encoder(m)
    if a.top:
        from ..data import load_dataset
        from ..viz.grid import make_grid
        layer = a.layer or [n for n, mod in enc.named_modules() if isinstance(mod, torch.nn.Conv2d)][-1]
        ds = load_dataset(m.cfg.dataset, "train", m.cfg.data_dir)
        from ..eval.retrieval import subsample
        ds = ds.subset(subsample(len(ds), a.n_images, a.seed))
        units = parse_ints(a.units, "units") or list(range(8))
        patches, scores = act.top_patches(m, ds.images, layer, units, k=a.k)
        print(f"layer {layer}: top-{a.k} of {len(ds)} train images for units {units}")
        write_picture(make_grid(patches, nrow=a.k), a.out, a.run_dir, f"viz/top_{layer}", m.step)
        return 0
    x8, title = _input_image(m, a)
    x = m.prepare_eval(x8)
    layers = [s for s in a.layer.split(",")] if a.layer else None
    acts = act.layer_activations(enc, x, layers)
    fig = act.activations_figure(x[0].cpu(), acts, a.max_maps, title)
    write_picture(fig, a.out, a.run_dir, "viz/activations", m.step)
    return 0


def cmd_embedding(a) -> int:
    from pathlib import Path

    from ..data import load_dataset
    from ..eval.retrieval import subsample
    from ..viz.embedding import embedding_figure, projector_export, tsne
    from ..eval.representation import descriptors
    m = open_run(a.run_dir)
    test = load_dataset(m.cfg.dataset, "test", m.cfg.data_dir)
    idx = subsample(len(test), a.n, a.seed)
    f = descriptors(m, test.images[idx], a.layer)
    xy = tsne(f, a.seed)
    title = (f"t-SNE of {len(idx)} {m.cfg.dataset} test descriptors ({a.layer or 'penultimate'}, "
             f"{f.shape[1]}-d), {m.name} step {m.step}")
    write_picture(embedding_figure(xy, test.labels[idx], test.classes, title), a.out, a.run_dir,
                  "viz/embedding", m.step)
    if not a.no_projector:
        logdir = projector_export(Path(a.run_dir) / "tb", f, test.labels[idx], test.images[idx],
                                  f"descriptors_{a.layer or 'penultimate'}", m.step)
        print(f"projector: tensorboard --logdir {logdir}  (PROJECTOR tab)")
    return 0


def cmd_correlate(a) -> int:
    from ..viz.correlate import correlate_figure, ncc_map, peak
    img, tpl = read_image(a.image), read_image(a.template)
    if img.shape[0] != tpl.shape[0]:                                   # colour wins
        img, tpl = read_image(a.image, 3), read_image(a.template, 3)
    img, tpl = img.float() / 255, tpl.float() / 255
    try:
        m = ncc_map(img, tpl, zero_mean=a.zero_mean)
    except ValueError as e:
        raise LatentlabError(str(e)) from None
    r, c = peak(m)
    print(f"peak NCC {float(m.max()):.4f} at row {r}, col {c} (top-left of the {tpl.shape[1]}x{tpl.shape[2]} match)")
    write_picture(correlate_figure(img, tpl, m), a.out)
    return 0


def register(sub) -> None:
    p = sub.add_parser("viz", help="pictures of what a run learned: filters, activations, embedding, correlate")
    vs = p.add_subparsers(dest="viz", required=True, metavar="WHAT")

    s = vs.add_parser("filters", help="the first-layer kernels as a grid")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    s.add_argument("--scale", type=int, default=None, help="upsampling of each kernel (default: >= 24 px)")
    s.set_defaults(func=cmd_filters)

    s = vs.add_parser("activations", help="feature maps of every layer for one input; --top: best patches")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    s.add_argument("--image", help="input picture (default: a test image, see --index)")
    s.add_argument("--index", type=int, default=0, help="test image index when no --image")
    s.add_argument("--layer", help="layer name(s) (named_modules; comma-separated); --top: one deep layer "
                                   "(default: the last Conv2d)")
    s.add_argument("--max-maps", type=int, default=32, help="feature maps shown per layer")
    s.add_argument("--top", action="store_true", help="dataset patches that most activate --units of --layer")
    s.add_argument("--units", help="comma-separated unit (channel) indices (default 0..7)")
    s.add_argument("--k", type=int, default=8, help="patches per unit")
    s.add_argument("--n-images", type=int, default=5000, help="train images searched (seeded subset)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_activations)

    s = vs.add_parser("embedding", help="t-SNE of test descriptors coloured by class + projector export")
    s.add_argument("run_dir")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=2000, help="test images embedded (seeded subset)")
    s.add_argument("--layer", help="descriptor layer name (default: the penultimate layer)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-projector", action="store_true", help="skip the TensorBoard projector export")
    s.set_defaults(func=cmd_embedding)

    s = vs.add_parser("correlate", help="normalised cross-correlation map of a template over an image")
    s.add_argument("--image", required=True)
    s.add_argument("--template", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--zero-mean", action="store_true", help="subtract means first (Pearson correlation)")
    s.set_defaults(func=cmd_correlate)

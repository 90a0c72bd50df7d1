"""CycleGAN: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
ICCV 2017, https://arxiv.org/abs/1703.10593; with CyCADA's semantic consistency (Hoffman et al., ICML 2018,
https://arxiv.org/abs/1711.03213) as an option. Two unpaired domains A and B, drawn independently:

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda L_cyc(G, F)                                   (Eq. 3)
        + 0.5 lambda L_identity                                     (Sec. 5.2, the authors' default)
        + lambda_sem (L_task(f_S, G(A), p(f_S, A)) + L_task(f_S, F(B), p(f_S, B)))        (CyCADA Eq. 4)

G = G_AB, F = G_BA: ResNet generators (6 blocks); D_A, D_B: PatchGANs with InstanceNorm; the least-squares
adversarial loss (Sec. 4); lambda = 10; each D updated on a pool of 50 earlier fakes, its loss halved; Adam 2e-4,
betas (0.5, 0.999), constant for the first half of training then linear to 0 (100 + 100 epochs). f_S is a frozen
classifier of domain A: the project's feature network of A (``latentlab featurenet A``), read at A's own size;
it is never trained here. Both domains are brought to one input (``data.convert``: grey repeated to RGB when
either is RGB, resized to ``img_size``), so identity and cycle losses compare like with like.

Defaults are the reference implementation's, sized for a CPU: widths 32 (its 64 one key away), batch 16 (its
1 on 256-px photos), 28 px as the domain-adaptation suite.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import nets
from ..config import TrainConfig, param, require
from ..data import load_dataset
from ..data.convert import convert_uint8, to_shape
from ..engine.batches import ShuffledBatches, Streams, stream_seed
from ..engine.method import Method, linear_decay, register_method
from ..errors import ConfigError
from ..eval.generative import VAL_SPLIT_SEED   # every run holds out the feature networks' own split
from ..losses import (cycle_consistency_loss, discriminator_loss_least_squares, generator_loss_least_squares,
                      identity_loss, semantic_consistency_loss)
from ..modules import eval_mode
from ..nets.translation import patch_layers, pool_query
from ..results import EvalResult
from ..viz.grid import labelled_rows, save_image


@dataclass
class CycleGANConfig(TrainConfig):
    domain_a: str = param("mnist", help="domain A (a dataset name; its labels are never read in training)")
    domain_b: str = param("usps", help="domain B (e.g. usps, mnist_m)")
    dataset: str = param("", help="set from domain_b (the domain translations are scored in); leave it unset")
    img_size: int = param(28, ge=8, help="both domains resized to this side (divisible by 4)")
    steps: int = param(3000, ge=1, help="steps (one G and one D update each)")
    batch_size: int = param(16, ge=1, help="images per domain per step (the reference: 1 on 256-px images)")
    lr: float = param(2e-4, gt=0, help="Adam learning rate of the generators and the discriminators (Zhu et al.)")
    betas: tuple[float, float] = param((0.5, 0.999), help="Adam betas (Zhu et al.)")
    lambda_cycle: float = param(10.0, ge=0, help="weight lambda of the cycle loss (Eq. 3)")
    lambda_identity: float = param(0.5, ge=0, help="identity loss weight as a fraction of lambda_cycle (the "
                                                   "authors' code: 0.5; 0: off)")
    lambda_semantic: float = param(0.0, ge=0, help="CyCADA's semantic consistency loss weight (0: plain CycleGAN; "
                                                   "CyCADA sums its terms with weight 1)")
    generator: str = param("resnet", choices=("resnet", "unet"), help="G_AB and G_BA: ResNet (CycleGAN) or U-Net")
    n_blocks: int = param(6, ge=0, help="residual blocks of the ResNet generator (6 at 128 px, 9 at 256)")
    ngf: int = param(32, ge=1, help="generator width (the reference's 64)")
    ndf: int = param(32, ge=1, help="PatchGAN width (the reference's 64)")
    d_layers: int = param(0, ge=0, le=5, help="PatchGAN stride-2 layers (0: scaled to the image; 3: 70x70; the image "
                                              "side over 2^d_layers must stay >= 3)")
    norm: str = param("instance", choices=("instance", "batch"), help="normalisation (the reference: instance)")
    pool_size: int = param(50, ge=0, help="generated images each D's history keeps (0: D sees only new fakes)")
    lr_decay: str = param("half", choices=("none", "half", "linear"),
                          help="constant, constant then linear to 0 over the second half (the reference), or "
                               "linear throughout")
    val_fraction: float = param(0.1, gt=0, lt=1, help="part of each domain's train held out (validation)")
    max_train: int | None = param(None, ge=1, help="use only the first N training images of each domain")
    eval_samples: int = param(2048, ge=2, help="held-out images per domain for the final metrics (FID from 2,048)")
    num_fixed: int = param(8, ge=1, help="held-out images per domain in the translation grids")
    log_every: int = param(50, ge=1)
    image_every: int = param(500, ge=0)

    def check(self):
        require(self.dataset in ("", self.domain_b), "dataset", self.dataset,
                f"cyclegan scores translations in domain_b={self.domain_b!r}; set domain_b, not dataset")
        object.__setattr__(self, "dataset", self.domain_b)
        require(self.img_size % 4 == 0 or self.generator == "unet", "img_size", self.img_size,
                "the ResNet generator needs a side divisible by 4")
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")
        require(self.d_layers == 0 or self.img_size >> self.d_layers >= 3, "d_layers", self.d_layers,
                f"too deep for {self.img_size}-px images (side / 2^d_layers must stay >= 3)")


@register_method
class CycleGAN(Method):
    name = "cyclegan"
    summary = "CycleGAN: two generators and PatchGANs on unpaired domains, LSGAN + cycle + identity (+ CyCADA)"
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
    Config = CycleGANConfig
    generative = True
    protocols = ("val", "test")
    trainable = ("G_AB", "G_BA", "D_A", "D_B")
    extra_state = ("pool_a", "pool_b", "pool_count")        # the fakes' histories: resume stays exact

    def __init__(self, cfg: CycleGANConfig):
        super().__init__(cfg)
        raw = {d: {s: load_dataset(name, s, cfg.data_dir) for s in ("train", "test")}
               for d, name in (("a", cfg.domain_a), ("b", cfg.domain_b))}
        self.native = {d: tuple(raw[d]["train"].shape) for d in raw}           # (C, H, W) of each domain
        c = 3 if any(s[0] == 3 for s in self.native.values()) else 1
        self.shape = (c, cfg.img_size, cfg.img_size)
        self.data = {}                                                         # domain -> split -> (images, labels)
        for d in raw:
            tr, va = raw[d]["train"].train_val(cfg.val_fraction, VAL_SPLIT_SEED)    # the feature networks' split
            if cfg.max_train:
                tr = tr.subset(range(min(cfg.max_train, len(tr))))
            self.data[d] = {s: (convert_uint8(ds.images, self.shape), ds.labels)
                            for s, ds in (("train", tr), ("val", va), ("test", raw[d]["test"]))}
        self.G_AB, self.G_BA = self.make_generator(), self.make_generator()
        n = cfg.d_layers or patch_layers(cfg.img_size)
        self.D_A, self.D_B = (nets.create("patch_discriminator", in_channels=c, ndf=cfg.ndf, n_layers=n, norm=cfg.norm)
                              for _ in range(2))
        self.pool_a = torch.zeros(cfg.pool_size, *self.shape)                 # F(b) history, for D_A
        self.pool_b = torch.zeros(cfg.pool_size, *self.shape)                 # G(a) history, for D_B
        self.pool_count = torch.zeros(2, dtype=torch.long)                    # images stored in each
        self.frozen = {}                        # f_S, loaded on first use: read, never trained, never checkpointed

    def make_generator(self):
        c = self.cfg
        if c.generator == "resnet":
            return nets.create("resnet_generator", in_channels=self.shape[0], out_channels=self.shape[0], ngf=c.ngf,
                               n_blocks=c.n_blocks, norm=c.norm)
        return nets.create("unet_generator", in_channels=self.shape[0], out_channels=self.shape[0],
                           img_size=c.img_size, ngf=c.ngf, norm=c.norm, dropout=0.0)

    def configure_optimizers(self):
        c = self.cfg
        return {"G": torch.optim.Adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), lr=c.lr,
                                      betas=c.betas),
                "D": torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=c.lr,
                                      betas=c.betas)}

    def configure_schedulers(self):
        c = self.cfg
        if c.lr_decay == "none":
            return {}
        return linear_decay(self.optimizers, c.steps, start=c.steps // 2 if c.lr_decay == "half" else 0)

    def batches(self, rank, world):
        c = self.cfg                                     # two streams, each with its own order: unpaired
        return Streams({d: ShuffledBatches({"x": self.data[d]["train"][0]}, c.batch_size, stream_seed(c.seed, d),
                                           rank, world) for d in ("a", "b")})

    # -- the frozen classifier of A (CyCADA) -------------------------------------------------------------
    def classifier(self):
        if "f_S" not in self.frozen:
            from ..eval.featurenet import load_featurenet
            self.frozen["f_S"] = load_featurenet(self.cfg.domain_a).to(self.device)
        return self.frozen["f_S"]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of f_S on images x in [-1, 1] (common shape), read at A's own size; differentiable in x."""
        m = self.classifier().model
        x01 = to_shape((x + 1) / 2, self.native["a"]).float().contiguous(memory_format=torch.channels_last)
        return m.forward_head(m.forward_features(x01)).to(x.dtype)

    # -- one step: the generators, then the discriminators on pooled fakes -----------------------------
    def generator_step(self, xa, xb):                   # xa: (B, C, H, W) of A, xb of B, in [-1, 1]
        c = self.cfg
        fake_b, fake_a = self.G_AB(xa), self.G_BA(xb)    # G(a), F(b)
        rec_a, rec_b = self.G_BA(fake_b), self.G_AB(fake_a)   # F(G(a)), G(F(b))
        adv = generator_loss_least_squares(self.D_B(fake_b)) + generator_loss_least_squares(self.D_A(fake_a))
        cyc = cycle_consistency_loss(rec_a, xa) + cycle_consistency_loss(rec_b, xb)          # Eq. 2
        loss, out = adv + c.lambda_cycle * cyc, {"loss_g_adv": adv.item(), "cycle": cyc.item()}
        if c.lambda_identity > 0:                        # G(b) ~ b, F(a) ~ a
            idt = identity_loss(self.G_AB(xb), xb) + identity_loss(self.G_BA(xa), xa)
            loss = loss + c.lambda_identity * c.lambda_cycle * idt
            out["identity"] = idt.item()
        if c.lambda_semantic > 0:                        # CyCADA: f_S keeps its reading through the translation
            with torch.no_grad():                        # the pseudo-labels p(f_S, x): no gradient
                pa, pb = self.classify(xa), self.classify(xb)
            sem = semantic_consistency_loss(self.classify(fake_b), pa) + semantic_consistency_loss(self.classify(fake_a), pb)
            loss = loss + c.lambda_semantic * sem
            out["semantic"] = sem.item()
        self.optimize("G", loss)                         # D's gradients from this pass are cleared by D's step
        return out, fake_a.detach(), fake_b.detach()

    def discriminator_step(self, xa, xb, fake_a, fake_b):
        fake_b = pool_query(self.pool_b, self.pool_count[1], fake_b)         # history of 50 fakes
        fake_a = pool_query(self.pool_a, self.pool_count[0], fake_a)
        d_b = discriminator_loss_least_squares(self.D_B(xb), self.D_B(fake_b))   # halved, as the authors' code
        d_a = discriminator_loss_least_squares(self.D_A(xa), self.D_A(fake_a))
        self.optimize("D", d_a + d_b)
        return {"loss_d_a": d_a.item(), "loss_d_b": d_b.item()}

    def training_step(self, batch, step):
        xa = self.prepare_images(batch["a"]["x"]) * 2 - 1
        xb = self.prepare_images(batch["b"]["x"]) * 2 - 1
        out, fake_a, fake_b = self.generator_step(xa, xb)
        out.update(self.discriminator_step(xa, xb, fake_a, fake_b))
        return out

    # -- translation, pictures, evaluation ------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x_uint8: torch.Tensor, direction: str = "ab", chunk: int = 500) -> torch.Tensor:
        """uint8 images of the common shape -> translations in [0, 1] on the CPU (``ab``: G_AB, ``ba``: G_BA)."""
        G = {"ab": self.G_AB, "ba": self.G_BA}[direction]
        with eval_mode(G):
            return torch.cat([(G(self.prepare_images(x_uint8[i:i + chunk]) * 2 - 1).float().cpu() + 1) / 2
                              for i in range(0, len(x_uint8), chunk)])

    def export_translations(self, root: str | Path, direction: str = "ab", limit: int | None = None) -> Path:
        """Write the translations of every labelled image of the input domain (``ab``: G_AB of A's train, its
        held-out part included, and of A's test split) with the input's labels, 8-bit in the common shape, as a
        dataset folder (train.npz / test.npz) that any method reads by path, e.g. ``source_only source=ROOT
        target=usps``: CyCADA's pixel-level adaptation, a classifier trained on translated source images (Hoffman
        et al. 2018, Sec. 3). ``limit``: only the first N images of each split (G costs ~0.1 GFLOP per 28-px
        image at the default width). Nothing of the output domain's labels is read."""
        from ..data.readers import write_npz_split
        src = {"ab": "a", "ba": "b"}[direction]
        parts = {"train": [self.data[src]["train"], self.data[src]["val"]], "test": [self.data[src]["test"]]}
        for split, chunks in parts.items():
            x = torch.cat([c[0] for c in chunks])[:limit]                     # (N, C, H, W) uint8
            y = torch.cat([torch.as_tensor(c[1]) for c in chunks])[:limit]
            fake = (self.translate(x, direction).clamp(0, 1) * 255).round().to(torch.uint8)
            write_npz_split(Path(root), split, fake.numpy(), y.numpy())
        return Path(root)

    def _images(self, domain: str, split: str, n: int):
        if split not in ("val", "test"):
            raise ConfigError(f"split '{split}': expected val or test")
        x, y = self.data[domain][split]
        return x[:n], y[:n]

    def grid(self, n: int | None = None) -> torch.Tensor:
        """Rows: A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B)) for held-out images of each domain."""
        n = n or self.cfg.num_fixed
        xa, _ = self._images("a", "val", n)
        xb, _ = self._images("b", "val", n)
        ab, ba = self.translate(xa, "ab"), self.translate(xb, "ba")
        q = lambda t: (t.clamp(0, 1) * 255).round().to(torch.uint8)     # noqa: E731
        rows = [xa.float() / 255, ab, self.translate(q(ab), "ba"), xb.float() / 255, ba, self.translate(q(ba), "ab")]
        k = min(len(xa), len(xb))
        names = [f"{self.cfg.domain_a}", "-> B", "-> A again", f"{self.cfg.domain_b}", "-> A", "-> B again"]
        return labelled_rows(torch.cat([r[:k] for r in rows]), k, names)

    def images(self):
        return {"translations": self.grid()}

    def on_train_end(self, run_dir):
        return {"translations": str(save_image(self.grid(16), Path(run_dir) / "translations.png", scale=2))}

    def sample(self, n, seed=None, **kw):
        """Translations A -> B of the first n held-out A images (the method has no noise input)."""
        return self.translate(self._images("a", "val", n)[0], "ab")

    def evaluate(self, protocol=None) -> EvalResult:
        """On the first ``eval_samples`` images of each domain's ``protocol`` split (val: held out from train;
        test: reported only): cycle reconstruction L1 (both ways), and each direction read by the feature network
        of its output domain at that domain's own size: FID / KID against that domain's real images, and the
        share of translations read as the input's class (label preservation), beside the same network's accuracy
        on the real images."""
        from ..eval import translation as tr
        from ..eval.featurenet import load_featurenet
        c, split = self.cfg, protocol or "val"
        m: dict[str, float] = {}
        xs = {d: self._images(d, split, c.eval_samples) for d in ("a", "b")}
        for src, dst, direction in (("a", "b", "ab"), ("b", "a", "ba")):
            x, y = xs[src]
            fake = tr.quantise(self.translate(x, direction))
            back = self.translate((fake * 255).round().to(torch.uint8), direction[::-1])
            m[f"cycle_l1_{src}"] = float((back - x.float() / 255).abs().mean())
            fn = load_featurenet(c.domain_a if dst == "a" else c.domain_b).to(self.device)
            native = self.native[dst]
            real_x, real_y = xs[dst]
            got = tr.domain_metrics(fn, tr.quantise(to_shape(fake, native)),
                                    tr.quantise(to_shape(real_x.float() / 255, native)), labels=y,
                                    real_labels=real_y, seed=c.seed)
            m.update({f"{k}_{direction}": v for k, v in got.items()})
        proto = {"split": split, "n_a": len(xs["a"][0]), "n_b": len(xs["b"][0]), "common_shape": list(self.shape),
                 "label_accuracy_ab": f"{c.domain_b}'s feature network reads G_AB(a) as a's class",
                 "label_accuracy_ba": f"{c.domain_a}'s feature network reads G_BA(b) as b's class",
                 "real_accuracy": "the same network on the output domain's real images (its ceiling)",
                 "fid_kid": "translations vs the output domain's real images, both brought to the common shape "
                            "and back to the domain's own (the round trip the training data took)",
                 "cycle_l1": "mean |F(G(x)) - x| in [0, 1] intensity, translations quantised to 8 bits between",
                 "semantic_classifier": (f"feature network of {c.domain_a} (sha256 {self.classifier().sha256[:16]}); it "
                                         f"also scores B -> A, so with the semantic loss on the _ba readings are "
                                         f"biased: compare the A -> B ones") if c.lambda_semantic > 0 else "off"}
        return EvalResult(m, proto)

"""StyleGAN: Karras et al., "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR 2019,
https://arxiv.org/abs/1812.04948; StyleGAN2's modulated convolution with weight demodulation as an option
(Karras et al., CVPR 2020, https://arxiv.org/abs/1912.04958). Networks in ``nets/stylegan.py``.

    w = f(z) (mapping, ``n_mlp`` layers); x = g(const; w_1..w_L, noise_1..noise_L) (synthesis)
    D:  min  softplus(D(G(z))) + softplus(-D(x)) + [every r1_every steps] r1_every gamma/2 ||grad_x D(x)||^2
    G:  min  softplus(-D(G(z)))                                        (non-saturating logistic loss)

Style mixing regularisation: with probability ``mixing`` (0.9) a batch uses two latents, w(z1) before a random
layer and w(z2) from it on (Sec. 3.1). R1 is lazy (StyleGAN2 Sec. 3.1): computed every ``r1_every`` = 16 steps,
scaled by 16, with D's Adam rate and betas adjusted by 16 / 17. Equalised learning rate, the mapping network at
a 100x lower rate, an EMA generator for evaluation and pictures, truncation with the tracked mean w for pictures.
Defaults for a CPU at 28-32 px (the paper's values one key away): z, w 128-d (512), widths 32, batch 32,
gamma 0.01 (StyleGAN2-ADA's CIFAR-10 setting; FFHQ: 10), Adam 2e-3, betas (0, 0.99) (StyleGAN2's);
``style=adain`` is StyleGAN's AdaIN, ``style=modulated`` StyleGAN2's convolution (``demodulate``). Both use
StyleGAN2's skip outputs (no progressive growing). One departure, for MNIST on a CPU budget: the image goes through
a tanh (``output=tanh``; StyleGAN's ``output=linear`` one key away), chosen on validation FID (the stylegan suite's
linear row and ``benchmarks/studies/stylegan_budget.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .. import nets
from ..config import param, require
from ..engine.method import register_method
from ..losses import discriminator_loss_minimax, generator_loss_nonsaturating, r1_penalty
from ..modules import eval_mode, unwrap
from ..nets.ema import ramped_decay
from ..nets.stylegan import mix_styles
from ..eval import gan_metrics as gm
from ..eval import generative as gen
from ..results import EvalResult
from ..viz.grid import labelled_rows, make_grid, save_image
from ._image_gan import ImageGAN, ImageGANConfig


@dataclass
class StyleGANConfig(ImageGANConfig):
    steps: int = param(5000, ge=1, help="generator steps")
    batch_size: int = param(32, ge=1, help="images per step (StyleGAN2: 32 at 1024 px; 64 for CIFAR-10)")
    z_dim: int = param(128, ge=1, help="latent z (the paper's 512)")
    w_dim: int = param(128, ge=1, help="intermediate latent w (the paper's 512)")
    n_mlp: int = param(8, ge=0, help="mapping network depth (the paper's 8; 0: w = normalised z, the ablation)")
    prior: str = param("normal", choices=("uniform", "normal"), help="z ~ N(0, I) (StyleGAN)")
    style: str = param("adain", choices=("adain", "modulated"),
                       help="how w enters each layer: StyleGAN's AdaIN or StyleGAN2's modulated convolution")
    demodulate: bool = param(True, help="StyleGAN2's weight demodulation (style=modulated only)")
    output: str = param("tanh", choices=("linear", "tanh"),
                        help="the image through a tanh (DCGAN's; chosen on validation FID: a linear output leaves "
                             "MNIST's flat background to chance and collapses at 500-2000 steps here) or the summed "
                             "tRGB outputs as they are (StyleGAN's `linear`)")
    mixing: float = param(0.9, ge=0, le=1, help="style mixing probability per batch (the paper's 0.9; 0: off)")
    r1_gamma: float = param(0.01, ge=0, help="R1 weight gamma (StyleGAN2-ADA CIFAR-10: 0.01; FFHQ: 10)")
    r1_every: int = param(16, ge=1, help="lazy regularisation interval (StyleGAN2: 16; 1: every step)")
    lr: float = param(2e-3, gt=0, help="Adam learning rate (StyleGAN2's 0.002)")
    betas: tuple[float, float] = param((0.0, 0.99), help="Adam betas (StyleGAN's)")
    mapping_lr_mul: float = param(0.01, gt=0, help="learning-rate multiplier of the mapping network (the paper's 0.01)")
    ema_decay: float = param(0.9978, ge=0, lt=1, help="EMA of G for evaluation and pictures: StyleGAN's half-life "
                                                      "of 10k images, 0.5 ** (32 / 10000) at batch 32 (0: off)")
    ema_rampup: float = param(0.05, ge=0, help="the EMA's half-life ramps up as this fraction of the images seen "
                                               "(StyleGAN2-ADA's ema_rampup, 0.05 in its auto and cifar configs; "
                                               "0: constant, as in StyleGAN; short runs need it)")
    truncation: float = param(0.7, gt=0, le=1, help="psi of the pictures' truncated grid (metrics use 1: none)")

    def check(self):
        super().check()
        require(all(0 <= b < 1 for b in self.betas), "betas", self.betas, "each beta must be in [0, 1)")
        require(self.n_mlp > 0 or self.z_dim == self.w_dim, "n_mlp", self.n_mlp,
                f"n_mlp = 0 maps w = z: z_dim ({self.z_dim}) must equal w_dim ({self.w_dim})")


@register_method
class StyleGAN(ImageGAN):
    name = "stylegan"
    summary = "StyleGAN: mapping network, per-layer styles (AdaIN or modulated conv) and noise, mixing, lazy R1"
    paper = "Karras et al. 2019, A Style-Based Generator Architecture for GANs (+ StyleGAN2's demodulation)"
    Config = StyleGANConfig
    protocols = (*ImageGAN.protocols, "mixing", "ppl")

    def __init__(self, cfg: StyleGANConfig):
        super().__init__(cfg)
        self.G = nets.create("stylegan_generator", img_size=self.H, channels=self.C, z_dim=cfg.z_dim, w_dim=cfg.w_dim,
                             n_mlp=cfg.n_mlp, ngf=cfg.ngf, style=cfg.style, demodulate=cfg.demodulate,
                             lr_mul=cfg.mapping_lr_mul, output=cfg.output)
        self.D = nets.create("stylegan_discriminator", img_size=self.H, channels=self.C, ndf=cfg.ndf)
        self.G_ema = self.make_ema()

    def ema(self):
        c = self.cfg
        return {"G_ema": ("G", ramped_decay(c.ema_decay, c.ema_rampup))} if c.ema_decay > 0 else {}

    def configure_optimizers(self):
        c = self.cfg
        k = c.r1_every / (c.r1_every + 1) if c.r1_gamma > 0 else 1.0    # lazy regularisation's correction
        return {"D": torch.optim.Adam(self.D.parameters(), lr=c.lr * k, betas=tuple(b ** k for b in c.betas)),
                "G": torch.optim.Adam(self.G.parameters(), lr=c.lr, betas=c.betas)}

    def generate_training(self, n: int) -> torch.Tensor:
        """A training batch of fakes: w(z1) in every layer, or with probability ``mixing`` w(z1) before a random
        layer and w(z2) from it on (style mixing regularisation); w_avg tracks the mean w."""
        c = self.cfg
        if c.mixing > 0 and float(torch.rand(())) < c.mixing:
            cut = int(torch.randint(1, unwrap(self.G).num_ws, ()))                 # crossover in [1, L)
            return self.G(self.noise(n), z_mix=self.noise(n), crossover=cut, track=True)
        return self.G(self.noise(n), track=True)

    def discriminator_step(self, x, step):               # x: (B, C, H, W) in [-1, 1]
        c = self.cfg
        fake = self.generate_training(len(x))             # graph kept for the G step
        loss = discriminator_loss_minimax(self.D(x), self.D(fake.detach()))
        self.optimize("D", loss)
        r1 = None
        if c.r1_gamma > 0 and step % c.r1_every == 0:     # lazy R1 (StyleGAN2): its own D step every r1_every
            x = x.detach().requires_grad_(True)           # steps, scaled by r1_every
            r1 = r1_penalty(self.differentiable(self.D)(x), x)
            self.optimize("D", c.r1_gamma / 2 * r1 * c.r1_every)
        return loss, fake, r1

    def generator_step(self, fake):
        loss = generator_loss_nonsaturating(self.D(fake))
        self.optimize("G", loss)
        return loss

    def training_step(self, batch, step):
        x, _ = self.real(batch)
        d_loss, fake, r1 = self.discriminator_step(x, step)
        g_loss = self.generator_step(fake)
        out = {"loss_d": d_loss.item(), "loss_g": g_loss.item()}
        if r1 is not None:
            out["r1"] = r1.item()
        return out

    # -- sampling with styles, truncation and noise; the paper's figures ---------------------------------
    def _g(self):
        return unwrap(self.G_ema if self.G_ema is not None else self.G)

    @torch.no_grad()
    def render(self, ws: torch.Tensor, noise=None, chunk: int = 250) -> torch.Tensor:
        """ws (N, num_ws, w_dim) -> images (N, C, H, W) in [0, 1] on the CPU (the EMA generator)."""
        G = self._g()
        dt = G.const.dtype                                   # float64 under precision=64-true
        with eval_mode(G):
            out = [G.synthesis(ws[i:i + chunk].to(self.device, dt),
                               None if noise is None else [n[i:i + chunk].to(self.device, dt) for n in noise]).float().cpu()
                   for i in range(0, len(ws), chunk)]
        return ((torch.cat(out) + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def latents(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        G = self._g()
        return G.map(z.to(self.device, G.const.dtype), psi).cpu()

    def mixed_sample(self, n: int, k: int, seed: int) -> torch.Tensor:
        """n images each made from k latents, switching at k - 1 layers drawn at random per image (the paper's
        Table 2 design: FID with 1, 2, 3 or 4 latents mixed at test time)."""
        G = self._g()
        g = torch.Generator().manual_seed(seed)
        ws = self.latents(self.prior(n, g))[:, None].expand(-1, G.num_ws, -1)   # (n, L, w_dim)
        for _ in range(k - 1):
            cut = torch.randint(1, G.num_ws, (n,), generator=g)
            ws = mix_styles(ws, self.latents(self.prior(n, g)), cut, G.num_ws)
        return self.render(ws)

    def layer_groups(self) -> dict[str, list[int]]:
        """Style indices per resolution band: coarse (the lowest third of the resolutions), middle, fine."""
        G = self._g()
        res = G.style_resolutions()
        levels = sorted(set(res))
        thirds = [levels[: max(1, len(levels) // 3)], levels[max(1, len(levels) // 3): -1], levels[-1:]]
        if not thirds[1]:
            thirds[1] = thirds[0][-1:]
        return {name: [i for i, r in enumerate(res) if r in band] for name, band in zip(("coarse", "middle", "fine"),
                                                                                        thirds)}

    def style_mixing_figure(self, rows: int = 4, cols: int = 5, seed: int = 2) -> torch.Tensor:
        """The paper's Fig. 3: sources A (rows) and B (columns); each band's block copies B's styles at that
        band's layers into A (the rest from A)."""
        G = self._g()
        g = torch.Generator().manual_seed(seed)
        psi = self.cfg.truncation
        wa, wb = self.latents(self.prior(rows, g), psi), self.latents(self.prior(cols, g), psi)
        ia, ib = self.render(wa[:, None].expand(-1, G.num_ws, -1)), self.render(wb[:, None].expand(-1, G.num_ws, -1))
        blank = torch.ones(1, *ia.shape[1:])
        tiles, labels = [blank, ib], ["B"]
        for name, layers in self.layer_groups().items():
            for r in range(rows):
                ws = wa[r][None, None].expand(cols, G.num_ws, -1).clone()
                ws[:, layers] = wb[:, None]
                tiles += [ia[r:r + 1], self.render(ws)]
                labels.append(f"{name} from B")
        return labelled_rows(torch.cat(tiles), cols + 1, labels)

    def noise_figure(self, n_w: int = 3, draws: int = 6, std_draws: int = 64, seed: int = 3) -> torch.Tensor:
        """The paper's Fig. 4: per row one w, ``draws`` noise realisations, and the per-pixel standard deviation
        over ``std_draws`` of them (brightest = most noise-dependent), scaled to its maximum."""
        G = self._g()
        g = torch.Generator().manual_seed(seed)
        ws = self.latents(self.prior(n_w, g), self.cfg.truncation)
        tiles = []
        for w in ws:
            wk = w[None, None].expand(std_draws, G.num_ws, -1)
            noise = [torch.randn(std_draws, 1, h, h, generator=g) for h, _ in G.noise_shapes()]
            x = self.render(wk, noise)                                               # (S, C, H, W)
            sd = x.std(0).mean(0, keepdim=True)                                      # (1, H, W)
            sd = (sd / sd.max().clamp_min(1e-8)).expand(x.shape[1], -1, -1)[None]
            tiles += [x[:draws], sd]
        return labelled_rows(torch.cat(tiles), draws + 1, [f"w {i}" for i in range(n_w)])

    def noise_scale_figure(self, seed: int = 4) -> torch.Tensor:
        """The paper's Fig. 5: (a) noise in all layers, (b) none, (c) fine layers only, (d) coarse layers only."""
        G = self._g()
        g = torch.Generator().manual_seed(seed)
        ws = self.latents(self.prior(6, g), self.cfg.truncation)[:, None].expand(-1, G.num_ws, -1)
        full = [torch.randn(6, 1, h, h, generator=g) for h, _ in G.noise_shapes()]
        groups = self.layer_groups()
        res = G.noise_shapes()                                   # noise of conv layer i is at res[i]
        band = lambda name: {r for i, r in enumerate(G.style_resolutions()) if i in groups[name]}  # noqa: E731
        keep = {"all": None, "none": set(), "fine only": band("fine"), "coarse only": band("coarse")}
        rows = [self.render(ws, [nz if k is None or res[i][0] in k else nz * 0 for i, nz in enumerate(full)])
                for k in keep.values()]
        return labelled_rows(torch.cat(rows), 6, list(keep))

    # -- the paper's measurements beyond the image report -----------------------------------------------
    def evaluate(self, protocol=None) -> EvalResult:
        """``mixing``: FID (KID below 2,048 samples) against the validation part when 1, 2, 3 or 4 latents are
        mixed per image at test time (the paper's Table 2); ``ppl``: the perceptual-path-length proxy; anything
        else: the image report (``ImageGAN.evaluate``)."""
        if protocol == "mixing":
            return self.mixing_report()
        if protocol == "ppl":
            return self.path_length()
        return super().evaluate(protocol)

    def mixing_report(self, n: int | None = None, seed: int = 1) -> EvalResult:
        sc = gen.Scorer.of(self)
        n = n or self.cfg.eval_samples
        part = "fid" if n >= gm.FID_MIN_SAMPLES else "kid"
        ref = sc.reference_features("val", n)
        m = {}
        for k in (1, 2, 3, 4):
            f = sc.read(gen.quantise(self.mixed_sample(n, k, seed)))[0]
            m[f"{part}_mix{k}"] = gm.fid(ref, f) if part == "fid" else gm.kid(ref, f, seed=seed)[0]
        return EvalResult(m, {**sc.protocol("val"), "n": n, "mixing": "k latents per image, switching at k - 1 "
                              "layers drawn uniformly per image (Karras et al. 2019, Table 2)", "metric": part})

    def path_length(self, n: int = 2000, eps: float = 1e-4, seed: int = 1) -> EvalResult:
        """Perceptual path length in W (Karras et al. 2019, Sec. 4.1: E[d(g(lerp(w1, w2, t)), g(lerp(w1, w2, t +
        eps))) / eps^2], t ~ U(0, 1), the 1% / 99% tails dropped), with d the squared distance between the project
        feature network's unit-normalised features instead of LPIPS (no VGG weights here: a proxy, comparable
        only within this project). The noise inputs are the same at both ends of each pair."""
        G, sc = self._g(), gen.Scorer.of(self)
        g = torch.Generator().manual_seed(seed)
        w1, w2 = self.latents(self.prior(n, g)), self.latents(self.prior(n, g))
        t = torch.rand(n, 1, generator=g)
        a, b = torch.lerp(w1, w2, t), torch.lerp(w1, w2, t + eps)
        noise = [torch.randn(n, 1, h, h, generator=g) for h, _ in G.noise_shapes()]
        L = G.num_ws
        fa = sc.read(self.render(a[:, None].expand(-1, L, -1), noise))[0]
        fb = sc.read(self.render(b[:, None].expand(-1, L, -1), noise))[0]
        fa, fb = torch.nn.functional.normalize(fa, dim=1), torch.nn.functional.normalize(fb, dim=1)
        d = (fa - fb).pow(2).sum(1) / eps ** 2
        lo, hi = torch.quantile(d, 0.01), torch.quantile(d, 0.99)
        keep = d[(d >= lo) & (d <= hi)]
        return EvalResult({"ppl_w": float(keep.mean())},
                          {**sc.fn.protocol(), "n": n, "eps": eps, "space": "W, lerp, full paths (t ~ U(0, 1))",
                           "distance": "squared L2 of unit-normalised feature-network features (LPIPS proxy: no "
                                       "VGG weights here); 1% / 99% tails dropped; images not quantised"})

    def on_train_end(self, run_dir):
        out = super().on_train_end(run_dir)
        run_dir = Path(run_dir)
        z = self.fixed_z[:32]
        trunc = self.render(self.latents(z, self.cfg.truncation)[:, None].expand(-1, self._g().num_ws, -1))
        out["truncated"] = str(save_image(make_grid(trunc, nrow=8), run_dir / "samples_truncated.png", scale=2))
        out["style_mixing"] = str(save_image(self.style_mixing_figure(), run_dir / "style_mixing.png", scale=2))
        out["noise"] = str(save_image(self.noise_figure(), run_dir / "noise.png", scale=2))
        out["noise_layers"] = str(save_image(self.noise_scale_figure(), run_dir / "noise_layers.png", scale=2))
        return out


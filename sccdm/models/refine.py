"""Compact diffusion refinement (SC-CDM section III-B, after DiffIR).

* :class:`PriorNet` (N1, DiffIR's CPEN): pixel-unshuffled image -> prior vector Z
  of size ``4 * prior_ch``. The teacher (N1-S1) sees concat(I, S_hat), the
  student (N1-S2) sees S_hat alone and provides the diffusion's condition.
* :class:`Restorer` (N2, DiffIR's DIRformer): a 4-level U-Net of dynamic
  transformer blocks; each block is DMTA (transposed / channel attention with
  L2-normalised q, k and a learned temperature) + DGFN (gated feed-forward with a
  depthwise conv), and the prior modulates the layer-normed features before each
  of them: ``LN(x) * (1 + gamma) + beta`` (``version`` 2) or DiffIR's
  ``LN(x) * gamma + beta`` (``version`` 1, the first shipped weights).
* :class:`PriorDiffusion`: T = 4 steps on Z only, betas linear 0.1 -> 0.99
  (DiffIR: ``linspace(sqrt 0.1, sqrt 0.99, T) ** 2``), an MLP denoiser on
  concat(condition, t, Z_t) that predicts Z_0; sampling runs all T reverse steps
  with the posterior mean.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["RefinerConfig", "PriorNet", "Restorer", "PriorDiffusion", "Refiner", "REFINER_PRESETS", "grow_state_dict"]


# --------------------------------------------------------------------------- helpers

class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels of an NCHW tensor."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.1, True),
                                  nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


# --------------------------------------------------------------------------- N1

class PriorNet(nn.Module):
    """N1: image(s) float [B, in_images*3, H, W] -> prior Z float [B, 4 * prior_ch]."""

    def __init__(self, in_images: int, prior_ch: int, width: int, n_res: int, max_ch: int):
        super().__init__()
        cin = in_images * 3 * 16
        layers = [nn.Conv2d(cin, width, 3, padding=1), nn.LeakyReLU(0.1, True)]
        layers += [ResBlock(width) for _ in range(n_res)]
        ch = width
        for _ in range(2):
            nxt = min(ch * 2, max_ch)
            layers += [nn.Conv2d(ch, nxt, 3, stride=2, padding=1), nn.LeakyReLU(0.1, True)]
            ch = nxt
        self.body = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(ch, 4 * prior_ch), nn.LeakyReLU(0.1, True),
                                 nn.Linear(4 * prior_ch, 4 * prior_ch), nn.LeakyReLU(0.1, True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % 4, 0, (-h) % 4), mode="replicate")
        x = F.pixel_unshuffle(x, 4)
        return self.mlp(self.body(x).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- N2 blocks

class DMTA(nn.Module):
    """Multi-head transposed (channel) attention with a learned temperature."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.dw = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.proj = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class DGFN(nn.Module):
    """Gated feed-forward: GELU(x1) * x2 after a depthwise 3x3 conv."""

    def __init__(self, dim: int, expansion: float):
        super().__init__()
        hidden = int(dim * expansion)
        self.inp = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x):
        x1, x2 = self.dw(self.inp(x)).chunk(2, dim=1)
        return self.out(F.gelu(x1) * x2)


class DynamicBlock(nn.Module):
    """LN -> prior modulation -> DMTA, LN -> prior modulation -> DGFN, both residual."""

    def __init__(self, dim: int, heads: int, expansion: float, prior_dim: int, residual_mod: bool = True):
        super().__init__()
        # With a purely multiplicative gamma a constant prior is a stable optimum (issue 9):
        # 1 + gamma keeps the block well-defined at gamma = 0 so Z can only add information.
        self.residual_mod = residual_mod
        self.norm1, self.norm2 = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.mod1 = nn.Linear(prior_dim, 2 * dim, bias=False)
        self.mod2 = nn.Linear(prior_dim, 2 * dim, bias=False)
        self.attn = DMTA(dim, heads)
        self.ffn = DGFN(dim, expansion)

    def _modulate(self, x, mod, z):
        gamma, beta = mod(z)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta if self.residual_mod else x * gamma + beta

    def forward(self, x, z):
        x = x + self.attn(self._modulate(self.norm1(x), self.mod1, z))
        return x + self.ffn(self._modulate(self.norm2(x), self.mod2, z))


class Level(nn.Module):
    def __init__(self, dim, n, heads, expansion, prior_dim, residual_mod=True):
        super().__init__()
        self.blocks = nn.ModuleList(DynamicBlock(dim, heads, expansion, prior_dim, residual_mod) for _ in range(n))

    def forward(self, x, z):
        for b in self.blocks:
            x = b(x, z)
        return x


class Restorer(nn.Module):
    """N2: S_hat float [B, 3, H, W] + prior Z [B, prior_dim] -> refined image [B, 3, H, W]."""

    def __init__(self, dim: int, blocks: tuple, heads: tuple, refine_blocks: int, expansion: float,
                 prior_dim: int, residual_mod: bool = True):
        super().__init__()
        lv = lambda d, n, h: Level(d, n, h, expansion, prior_dim, residual_mod)  # noqa: E731
        self.embed = nn.Conv2d(3, dim, 3, padding=1)
        dims = [dim * 2 ** i for i in range(4)]
        self.enc = nn.ModuleList(lv(dims[i], blocks[i], heads[i]) for i in range(3))
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(dims[i], dims[i] // 2, 3, padding=1, bias=False),
                                                nn.PixelUnshuffle(2)) for i in range(3))
        self.mid = lv(dims[3], blocks[3], heads[3])
        self.up = nn.ModuleList(nn.Sequential(nn.Conv2d(dims[i + 1], dims[i + 1] * 2, 3, padding=1, bias=False),
                                              nn.PixelShuffle(2)) for i in range(3))
        # The top level keeps 2 * dim after the skip concat, as in DiffIR / Restormer.
        self.fuse = nn.ModuleList([nn.Identity()] + [nn.Conv2d(dims[i] * 2, dims[i], 1, bias=False)
                                                     for i in range(1, 3)])
        top = dims[0] * 2
        self.dec = nn.ModuleList([lv(top, blocks[0], heads[0])] + [lv(dims[i], blocks[i], heads[i]) for i in range(1, 3)])
        self.refine = lv(top, refine_blocks, heads[0])
        self.out = nn.Conv2d(top, 3, 3, padding=1)
        # Zero init: the untrained restorer is the identity, so refinement starts at NSF quality.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, s_hat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h, w = s_hat.shape[-2:]
        x = F.pad(s_hat, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")
        feat = self.embed(x)
        skips = []
        for lvl, down in zip(self.enc, self.down):
            feat = lvl(feat, z)
            skips.append(feat)
            feat = down(feat)
        feat = self.mid(feat, z)
        for i in (2, 1, 0):
            feat = torch.cat([self.up[i](feat), skips[i]], dim=1)
            feat = self.dec[i](self.fuse[i](feat), z)
        feat = self.refine(feat, z)
        return (self.out(feat) + x)[..., :h, :w]


# --------------------------------------------------------------------------- diffusion on Z

class PriorDiffusion(nn.Module):
    """T-step diffusion on the prior vector with an x0-predicting MLP denoiser."""

    def __init__(self, prior_dim: int, steps: int = 4, hidden_mult: int = 2, layers: int = 5,
                 x0_residual: bool = False):
        super().__init__()
        self.steps = steps
        # x0_residual: predict Z_0 as cond + MLP(...) (MLP zero-initialised). With a student that
        # starts from the teacher's weights, the first reverse pass already gives the teacher's
        # estimate instead of a constant, so the restorer keeps a prior worth reading.
        self.x0_residual = x0_residual
        betas = torch.linspace(0.1 ** 0.5, 0.99 ** 0.5, steps) ** 2
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1), abar[:-1]])
        self.register_buffer("betas", betas)
        self.register_buffer("abar", abar)
        self.register_buffer("abar_prev", abar_prev)
        self.register_buffer("coef_x0", betas * abar_prev.sqrt() / (1 - abar))
        self.register_buffer("coef_xt", (1 - abar_prev) * alphas.sqrt() / (1 - abar))
        self.register_buffer("post_var", betas * (1 - abar_prev) / (1 - abar))
        hid = prior_dim * hidden_mult
        mods = [nn.Linear(prior_dim * 2 + 1, hid), nn.LeakyReLU(0.1, True)]
        for _ in range(layers - 2):
            mods += [nn.Linear(hid, hid), nn.LeakyReLU(0.1, True)]
        mods += [nn.Linear(hid, prior_dim)] + ([] if x0_residual else [nn.LeakyReLU(0.1, True)])
        self.denoiser = nn.Sequential(*mods)
        if x0_residual:
            nn.init.zeros_(mods[-1].weight)
            nn.init.zeros_(mods[-1].bias)

    def q_sample(self, z0: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        return self.abar[t].sqrt() * z0 + (1 - self.abar[t]).sqrt() * noise

    def predict_x0(self, zt: torch.Tensor, cond: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((zt.shape[0], 1), t / max(self.steps - 1, 1), device=zt.device, dtype=zt.dtype)
        out = self.denoiser(torch.cat([cond, tt, zt], dim=1))
        return cond + out if self.x0_residual else out

    def sample(self, cond: torch.Tensor, z_start: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Run all T reverse steps (posterior mean) from Gaussian noise or ``z_start``."""
        z = z_start if z_start is not None else torch.randn(cond.shape, generator=generator,
                                                             device=cond.device, dtype=cond.dtype)
        for t in reversed(range(self.steps)):
            x0 = self.predict_x0(z, cond, t)
            z = self.coef_x0[t] * x0 + self.coef_xt[t] * z if t > 0 else x0
        return z


# --------------------------------------------------------------------------- the module

LEGACY_DEFAULTS = {"version": 1, "x0_residual": False}


@dataclass
class RefinerConfig:
    prior_ch: int = 96               # C'; the prior vector has 4 * C' entries
    n1_width: int = 64
    n1_res: int = 4
    n1_max_ch: int = 256
    dim: int = 48
    blocks: tuple = (3, 5, 6, 6)
    heads: tuple = (1, 2, 4, 8)
    refine_blocks: int = 4
    expansion: float = 2.0
    steps: int = 4
    # 2: LN(x) * (1 + gamma) + beta and a teacher that also sees the residual I - S_hat;
    # 1: the first shipped weights (DiffIR's LN(x) * gamma + beta, teacher on (I, S_hat)).
    version: int = 2
    x0_residual: bool = True         # the denoiser predicts Z_0 - cond (see PriorDiffusion)
    # The diffusion's condition also reads the SNR the receiver knows (N1-S2(S_hat) + an MLP of it). Measured
    # without it: at 0 dB the served prior lost to one that knows only the SNR (the mean teacher prior).
    snr_prior: bool = False

    @property
    def prior_dim(self) -> int:
        return 4 * self.prior_ch

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "RefinerConfig":
        d = {**LEGACY_DEFAULTS, **d}  # configs written before a field existed keep the old behaviour
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class Refiner(nn.Module):
    """N1 teacher + N1 student + diffusion + N2.

    ``forward(s_hat)`` (inference) returns the refined image float [B, 3, H, W];
    :meth:`stage1` and :meth:`stage2` return dicts for the two training stages.
    """

    def __init__(self, cfg: RefinerConfig):
        super().__init__()
        self.cfg = cfg
        pd = cfg.prior_dim
        v2 = cfg.version >= 2
        self.teacher = PriorNet(3 if v2 else 2, cfg.prior_ch, cfg.n1_width, cfg.n1_res, cfg.n1_max_ch)
        self.student = PriorNet(1, cfg.prior_ch, cfg.n1_width, cfg.n1_res, cfg.n1_max_ch)
        self.diffusion = PriorDiffusion(pd, cfg.steps, x0_residual=cfg.x0_residual)
        if cfg.snr_prior:  # zero last layer: a refiner given this input computes what it did without it
            self.snr_embed = nn.Sequential(nn.Linear(1, pd), nn.SiLU(), nn.Linear(pd, pd))
            nn.init.zeros_(self.snr_embed[2].weight)
            nn.init.zeros_(self.snr_embed[2].bias)
        self.restorer = Restorer(cfg.dim, cfg.blocks, cfg.heads, cfg.refine_blocks, cfg.expansion, pd,
                                 residual_mod=v2)

    def teacher_prior(self, image: torch.Tensor, s_hat: torch.Tensor) -> torch.Tensor:
        """Z_0 from N1-S1: float [B, prior_dim]. Version 2 hands it the residual explicitly: the
        prior exists to carry what S_hat lacks, and the residual is exactly that."""
        parts = [image, s_hat] + ([image - s_hat] if self.cfg.version >= 2 else [])
        return self.teacher(torch.cat(parts, dim=1))

    def condition(self, s_hat: torch.Tensor, snr_db=None) -> torch.Tensor:
        """The diffusion's condition, float [B, prior_dim]: N1-S2(S_hat), plus an MLP of ``snr_db`` (float or
        float [B], the SNR the decoder was given) for a ``snr_prior`` refiner; others ignore ``snr_db``."""
        c = self.student(s_hat)
        if not self.cfg.snr_prior:
            return c
        if snr_db is None:
            raise ValueError("this refiner's prior reads the SNR: pass snr_db")
        snr = torch.as_tensor(snr_db, dtype=c.dtype, device=c.device).reshape(-1, 1).expand(c.shape[0], 1)
        return c + self.snr_embed(snr / 10)

    def student_prior(self, s_hat: torch.Tensor, generator: torch.Generator | None = None,
                      z_start: torch.Tensor | None = None, snr_db=None) -> torch.Tensor:
        """Z_hat at inference: T reverse diffusion steps conditioned on N1-S2(S_hat) (and the SNR, see
        :meth:`condition`), float [B, prior_dim]."""
        return self.diffusion.sample(self.condition(s_hat, snr_db), z_start=z_start, generator=generator)

    @torch.no_grad()
    def init_student_from_teacher(self) -> None:
        """Start N1-S2 as N1-S1 evaluated with I := S_hat (and a zero residual): the same layers,
        the first conv's weights for I and S_hat summed. Stage 2 then refines a prior that already
        varies from image to image instead of learning one from a constant."""
        t, s = self.teacher.state_dict(), self.student.state_dict()
        w = t["body.0.weight"]  # [width, in_images * 48, 3, 3]; pixel-unshuffle keeps each image's 48 together
        s["body.0.weight"] = w[:, :48] + w[:, 48:96]
        for k in s:
            if k != "body.0.weight":
                s[k] = t[k].clone()
        self.student.load_state_dict(s)

    def stage1(self, image: torch.Tensor, s_hat: torch.Tensor) -> dict:
        z0 = self.teacher_prior(image, s_hat)
        return {"x_hat": self.restorer(s_hat, z0), "z0": z0}

    def stage2(self, image: torch.Tensor, s_hat: torch.Tensor, generator=None, anchor: bool = False,
               teacher_grad: bool = False, snr_db=None) -> dict:
        """anchor: also restore with the teacher's prior (``x_teacher``), so a restorer trained here
        stays one that reads its prior instead of learning to do without it. teacher_grad: the
        teacher keeps training (its prior then also answers to the losses here)."""
        with torch.set_grad_enabled(teacher_grad and torch.is_grad_enabled()):
            z0 = self.teacher_prior(image, s_hat)
        cond = self.condition(s_hat, snr_db)
        noise = torch.randn(z0.shape, generator=generator, device=z0.device)
        z_t = self.diffusion.q_sample(z0, self.cfg.steps - 1, noise)
        z_hat = self.diffusion.sample(cond, z_start=z_t)
        out = {"x_hat": self.restorer(s_hat, z_hat), "z_hat": z_hat, "z0": z0}
        if anchor:
            out["x_teacher"] = self.restorer(s_hat, z0)
        return out

    def forward(self, s_hat: torch.Tensor, generator: torch.Generator | None = None,
                z_start: torch.Tensor | None = None, snr_db=None) -> torch.Tensor:
        """s_hat: float [B, 3, H, W]; z_start: optional float [B, prior_dim], the diffusion's starting
        noise (a server batching requests draws each request's rows from its own generator); snr_db: float
        or float [B], read by ``snr_prior`` refiners."""
        return self.restorer(s_hat, self.student_prior(s_hat, generator, z_start, snr_db)).clamp(0, 1)


REFINER_PRESETS = {
    "paper": RefinerConfig(),
    # The paper's structure at a size that ships (about 10 M parameters, 20 MB in fp16): narrower
    # levels and fewer blocks; what the GPU recipe trains.
    "paper-s": RefinerConfig(prior_ch=64, n1_width=64, dim=32, blocks=(2, 2, 3, 3), refine_blocks=2),
    # Depthwise-conv backward dominates on CPU, so the full-resolution levels stay narrow.
    "cpu": RefinerConfig(prior_ch=16, n1_width=32, n1_res=1, n1_max_ch=64, dim=16, blocks=(1, 1, 1, 1),
                         heads=(1, 2, 4, 8), refine_blocks=1, expansion=1.5, steps=4),
}
# The cpu preset's widths with more blocks at the coarse levels, where a block costs little CPU time (+20 % per
# step for 2.6x the restorer parameters); grown from a trained cpu refiner with grow_state_dict.
REFINER_PRESETS["cpu-deep"] = dataclasses.replace(REFINER_PRESETS["cpu"], blocks=(1, 2, 4, 6))


def grow_state_dict(model: Refiner, state: dict) -> dict:
    """A state dict for ``model`` from a shallower refiner of the same widths (``state``).

    Blocks ``state`` lacks start as the identity (their two residual branches' output convs are zero), and so does
    an SNR input it lacks (``snr_prior``), so the grown model computes exactly what the smaller one did and training
    only adds to it. Any other difference raises.
    """
    own = model.state_dict()
    if set(state) - set(own):
        raise ValueError(f"weights the grown model does not have: {sorted(set(state) - set(own))[:4]}")
    out = {}
    for k, v in own.items():
        if k in state:
            if state[k].shape != v.shape:
                raise ValueError(f"{k}: shape {tuple(state[k].shape)} vs {tuple(v.shape)} (only depth may grow)")
            out[k] = state[k]
        elif k.startswith("snr_embed."):  # a new SNR input (snr_prior): starts as "no effect", see Refiner
            out[k] = v
        elif ".blocks." not in k:
            raise ValueError(f"{k} is missing and is not part of a new block")
        else:
            out[k] = torch.zeros_like(v) if k.endswith(("attn.proj.weight", "ffn.out.weight")) else v
    return out

"""SNR-conditioned Swin Transformer JSCC encoder / decoder (SC-CDM section III-A, after WITT).

Layout follows timm's Swin file: helpers, then blocks, then stages, then the
models, configs last. Tensors are channels-last tokens ``[B, H, W, C]`` inside
the stages and NCHW images / latents outside.

SNR conditioning: a small MLP embeds the per-image SNR (dB, float [B]); every
Swin block maps that embedding to a per-channel scale and shift applied to its
layer-normed features before attention and before the MLP (FiLM), and a final
sigmoid channel mask (WITT's ModNet) gates the latent / the decoder input. So one
model serves the whole SNR range and one batch may mix SNRs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..symbols import LatentGeometry

__all__ = ["SwinJSCCConfig", "SwinJSCCEncoder", "SwinJSCCDecoder", "SwinJSCC", "SWIN_PRESETS"]

SNR_NORM_DB = (-5.0, 25.0)  # SNR inputs are clamped to this range before the embedding


# --------------------------------------------------------------------------- helpers

def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * nW, ws * ws, C]."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(win: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """[B * nW, ws * ws, C] -> [B, H, W, C]."""
    c = win.shape[-1]
    b = win.shape[0] // ((h // ws) * (w // ws))
    x = win.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(ws: int, table_ws: int) -> torch.Tensor:
    """Index into a (2*table_ws-1)^2 bias table for a ws x ws window (ws <= table_ws)."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (table_ws - 1)
    return rel[..., 0] * (2 * table_ws - 1) + rel[..., 1]


_MASK_CACHE: dict = {}


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device) -> torch.Tensor:
    """Attention mask [nW, ws*ws, ws*ws] (0 or -100) for the cyclic shift trick."""
    key = (h, w, ws, shift, str(device))
    if key not in _MASK_CACHE:
        img = torch.zeros(1, h, w, 1, device=device)
        cnt = 0
        for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
                img[:, hs, wsl, :] = cnt
                cnt += 1
        win = window_partition(img, ws).squeeze(-1)
        diff = win[:, None, :] - win[:, :, None]
        _MASK_CACHE[key] = diff.ne(0).float() * -100.0
    return _MASK_CACHE[key]


def snr_features(snr_db: torch.Tensor) -> torch.Tensor:
    """float [B] dB -> float [B, 1] scaled to about [0, 1]."""
    return _snr_scale(snr_db).unsqueeze(1)


def _snr_scale(snr_db: torch.Tensor) -> torch.Tensor:
    lo, hi = SNR_NORM_DB
    return (snr_db.float().clamp(lo, hi) - lo) / (hi - lo)


def csi_features(snr_map_db: torch.Tensor) -> torch.Tensor:
    """Per-value SNR float [B, C, h, w] dB -> float [B, h, w, 2C]: the SNR scaled as the embedding's input,
    and the MMSE error variance 1 / (1 + SNR) of each value (1 where nothing arrived)."""
    lin = torch.pow(10.0, snr_map_db.float().clamp(max=60.0) / 10)
    return torch.cat([_snr_scale(snr_map_db), 1 / (1 + lin)], dim=1).permute(0, 2, 3, 1)


def pad_to_multiple(x: torch.Tensor, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad NCHW on the bottom / right to a multiple of m; returns (x, (pad_h, pad_w))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (ph, pw)


class SNREmbedding(nn.Module):
    """SNR (dB) [+ rate] -> embedding [B, E] (WITT ModNet-style MLP: 1 (2) -> E -> E, ReLU).

    rate: a rate-adaptive codec also feeds the share of latent channels sent, float [B] in (0, 1].
    """

    def __init__(self, dim: int, rate: bool = False):
        super().__init__()
        self.rate = rate
        self.net = nn.Sequential(nn.Linear(2 if rate else 1, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                 nn.Linear(dim, dim))

    def forward(self, snr_db: torch.Tensor, rate: torch.Tensor | None = None) -> torch.Tensor:
        f = snr_features(snr_db)
        if self.rate:
            r = torch.ones_like(f) if rate is None else rate.to(f).reshape(-1, 1).expand_as(f)
            f = torch.cat([f, r], dim=1)
        return self.net(f)


def _check_channels(cfg, channels: int | None) -> int:
    c = cfg.channels if channels is None else int(channels)
    if c != cfg.channels and c not in cfg.rates:
        raise ValueError(f"this codec sends {list(cfg.rates) or [cfg.channels]} latent channels, not {c}")
    return c


def _rate(c: int, cfg, like: torch.Tensor) -> torch.Tensor:
    return torch.full((like.shape[0],), c / cfg.channels, device=like.device)


# A Swin block's two residual branches end in these layers: zero, the block is the identity.
_BLOCK_OUTPUTS = ("attn.proj.weight", "attn.proj.bias", "mlp.2.weight", "mlp.2.bias")


def adapt_state_dict(model: nn.Module, state: dict) -> dict:
    """A fixed-rate codec's weights for its rate-adaptive twin: the embeddings' new rate input
    starts at zero, so at full rate the twin computes what the original did. For a codec with
    fewer latent channels (a single-CBR reference), the latent-facing layers keep their first
    channels: it then sends what the wider codec's prefix would. A codec given the CSI map input
    (``csi_map``) starts with that input at zero. A deeper codec of the same widths (more blocks per stage, e.g.
    the ``cpu-deep`` preset grown from ``cpu``) gets the source's blocks first in each stage and new blocks that
    start as the identity (both residual branches' output layers zero), so it too computes what the source did."""
    own = model.state_dict()
    out = dict(state)
    for k, v in own.items():
        if k in state:
            continue
        if ".csi_head." in k:  # inputs the source lacks (the CSI map) keep their zero init
            out[k] = v
        elif ".blocks." in k:  # a block the source lacks
            out[k] = torch.zeros_like(v) if k.endswith(_BLOCK_OUTPUTS) else v
    for k, v in state.items():
        if k not in own or own[k].shape == v.shape:
            continue
        o = own[k]
        if o.dim() == 2 and v.dim() == 2 and o.shape[0] == v.shape[0] and o.shape[1] == v.shape[1] + 1:
            out[k] = torch.cat([v, torch.zeros_like(v[:, :1])], dim=1)
        elif o.dim() == v.dim() and all(a <= b for a, b in zip(o.shape, v.shape)):
            out[k] = v[tuple(slice(0, a) for a in o.shape)].clone()
    return out


# --------------------------------------------------------------------------- blocks

class WindowAttention(nn.Module):
    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self._index_cache: dict = {}

    def rel_bias(self, ws: int) -> torch.Tensor:
        if ws not in self._index_cache:
            self._index_cache[ws] = relative_position_index(ws, self.window)
        idx = self._index_cache[ws].to(self.bias_table.device)
        return self.bias_table[idx.reshape(-1)].view(ws * ws, ws * ws, -1).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, ws: int, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        bias = self.rel_bias(ws).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias.unsqueeze(0) + mask[None, :, None]).expand(bw // nw, -1, -1, -1, -1)
            bias = bias.reshape(bw, self.heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """W-MSA or SW-MSA + MLP, with SNR FiLM on the normed features."""

    def __init__(self, dim: int, heads: int, window: int, shift: bool, snr_dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.film = nn.Linear(snr_dim, 4 * dim)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        s1, b1, s2, b2 = self.film(emb)[:, None, None, :].chunk(4, dim=-1)
        ws = min(self.window, h, w)
        shift = ws // 2 if (self.shift and min(h, w) > self.window) else 0
        y = self.norm1(x) * (1 + s1) + b1
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
        mask = shifted_window_mask(h, w, ws, shift, x.device) if shift else None
        y = window_reverse(self.attn(window_partition(y, ws), ws, mask), ws, h, w)
        if shift:
            y = torch.roll(y, (shift, shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(self.norm2(x) * (1 + s2) + b2)


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (4C) -> LayerNorm -> Linear to out_dim; halves H and W."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduce(self.norm(x))


class PatchReverseMerging(nn.Module):
    """Linear to 4 * out_dim, then pixel shuffle x2; doubles H and W."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, 4 * out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.norm(x)).permute(0, 3, 1, 2)
        return F.pixel_shuffle(x, 2).permute(0, 2, 3, 1)


# --------------------------------------------------------------------------- stages

class SwinStage(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, window: int, snr_dim: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, shift=(i % 2 == 1), snr_dim=snr_dim, mlp_ratio=mlp_ratio)
            for i in range(depth))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x, emb)
        return x


# --------------------------------------------------------------------------- models

@dataclass
class SwinJSCCConfig(LatentGeometry):
    """Sizes of the Swin JSCC codec.

    patch: patch size of the embedding; dims / depths / heads: per stage (two
    stages, one patch merging between them); window: attention window in tokens;
    channels: C, latent channels at H/8 x W/8; snr_dim: width of the SNR embedding.
    rates: rate adaptation (SwinJSCC-style): the numbers of latent channels the codec may send,
    ascending, the last = ``channels``; the encoder sends a prefix of its channels, the decoder
    zero-fills the rest; both are told the share sent. Empty: fixed rate.
    csi_map: the decoder also reads each received value's SNR (float [B, C, h, w] dB, what per-symbol
    fading, OFDM subcarriers or erasures leave of it), not only the image's mean SNR.
    """

    patch: int = 4
    dims: tuple = (128, 256)
    depths: tuple = (2, 4)
    heads: tuple = (4, 8)
    window: int = 4
    channels: int = 32
    snr_dim: int = 64
    mlp_ratio: float = 4.0
    rates: tuple = ()
    csi_map: bool = False

    def __post_init__(self):
        if self.rates and (list(self.rates) != sorted(set(self.rates)) or self.rates[-1] != self.channels
                           or self.rates[0] < 2 or any(r % 2 for r in self.rates)):
            raise ValueError(f"rates must be ascending even channel counts ending at channels={self.channels}, "
                             f"got {self.rates}")

    @property
    def downscale(self) -> int:
        return self.patch * 2 ** (len(self.dims) - 1)

    @property
    def pad_multiple(self) -> int:
        return self.downscale * self.window

    @property
    def decoder_reach(self) -> int:
        """Latent pixels next to a cut on the window grid whose decoded pixels depend on latent beyond the cut: the
        margin a tiled decoder must drop to equal the untiled one (3 for the ``cpu`` preset, 7 for ``paper`` and
        ``cpu-deep``). Attention mixes whole windows and everything else is per pixel, so the context reaching
        across the cut grows window by window: to the next window boundary at each block, the boundaries shifting
        by half a window in every second block, and doubling in pixels at each patch expansion."""
        w, reach = self.window, 0
        for i, depth in enumerate(reversed(self.depths)):  # the decoder's stages, latent level first
            if i:
                reach *= 2                                     # patch expansion: twice the pixels
            for b in range(depth):
                offset = w // 2 if b % 2 else 0               # where this block's window boundaries lie
                if reach or offset:                            # an aligned block keeps an untouched cut clean
                    reach = offset + -(-(max(reach, 1) - offset) // w) * w
        return -(-reach // 2 ** (len(self.depths) - 1))

    def latent_shape(self, height: int, width: int, channels: int | None = None) -> tuple[int, int, int]:
        """(C, h, w) of the latent sent for an H x W image, after padding (C: ``channels`` if given)."""
        m = self.pad_multiple
        hp, wp = height + (-height) % m, width + (-width) % m
        return (channels or self.channels, hp // self.downscale, wp // self.downscale)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SwinJSCCConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class SwinJSCCEncoder(nn.Module):
    """image float [B, 3, H, W] in [0, 1] + snr_db float [B] -> latent float [B, C, h, w] (padded)."""

    def __init__(self, cfg: SwinJSCCConfig):
        super().__init__()
        self.cfg = cfg
        d0 = cfg.dims[0]
        self.embed = nn.Conv2d(3, d0, cfg.patch, stride=cfg.patch)
        self.embed_norm = nn.LayerNorm(d0)
        self.snr_embed = SNREmbedding(cfg.snr_dim, rate=bool(cfg.rates))
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (d, n, hd) in enumerate(zip(cfg.dims, cfg.depths, cfg.heads)):
            if i > 0:
                self.merges.append(PatchMerging(cfg.dims[i - 1], d))
            self.stages.append(SwinStage(d, n, hd, cfg.window, cfg.snr_dim, cfg.mlp_ratio))
        self.head_norm = nn.LayerNorm(cfg.dims[-1])
        self.head = nn.Linear(cfg.dims[-1], cfg.channels)
        self.mask = nn.Linear(cfg.snr_dim, cfg.channels)

    def forward(self, image: torch.Tensor, snr_db: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        """channels: how many latent channels to send (one of ``cfg.rates``; default all)."""
        c = _check_channels(self.cfg, channels)
        x, _ = pad_to_multiple(image, self.cfg.pad_multiple)
        emb = self.snr_embed(snr_db, _rate(c, self.cfg, snr_db))
        x = self.embed_norm(self.embed(x * 2 - 1).permute(0, 2, 3, 1))
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.merges[i - 1](x)
            x = stage(x, emb)
        x = self.head(self.head_norm(x)) * torch.sigmoid(self.mask(emb))[:, None, None, :] * 2
        return x[..., :c].permute(0, 3, 1, 2).contiguous()


class SwinJSCCDecoder(nn.Module):
    """latent float [B, C, h, w] + snr_db float [B] -> image float [B, 3, h*8, w*8] in [0, 1]."""

    def __init__(self, cfg: SwinJSCCConfig):
        super().__init__()
        self.cfg = cfg
        dims = list(cfg.dims)[::-1]
        depths, heads = list(cfg.depths)[::-1], list(cfg.heads)[::-1]
        self.snr_embed = SNREmbedding(cfg.snr_dim, rate=bool(cfg.rates))
        self.mask = nn.Linear(cfg.snr_dim, cfg.channels)
        self.head = nn.Linear(cfg.channels, dims[0])
        self.stages = nn.ModuleList()
        self.expands = nn.ModuleList()
        for i, (d, n, hd) in enumerate(zip(dims, depths, heads)):
            if i > 0:
                self.expands.append(PatchReverseMerging(dims[i - 1], d))
            self.stages.append(SwinStage(d, n, hd, cfg.window, cfg.snr_dim, cfg.mlp_ratio))
        self.out_norm = nn.LayerNorm(dims[-1])
        self.out = nn.Linear(dims[-1], 3 * cfg.patch ** 2)
        if cfg.csi_map:  # starts at zero: a codec given the map computes what it did without it
            self.csi_head = nn.Linear(2 * cfg.channels, dims[0], bias=False)
            nn.init.zeros_(self.csi_head.weight)

    def forward(self, latent: torch.Tensor, snr_db: torch.Tensor, snr_map: torch.Tensor | None = None) -> torch.Tensor:
        """latent: [B, c, h, w] with c one of ``cfg.rates`` (the channels not sent are zero-filled).
        snr_map: float [B, c, h, w], each value's SNR in dB (``cfg.csi_map`` codecs; default: ``snr_db``
        everywhere, as on AWGN or block fading); ignored by codecs without the map input."""
        c = _check_channels(self.cfg, latent.shape[1])
        if self.cfg.csi_map:
            m = snr_db.float().reshape(-1, 1, 1, 1).expand(latent.shape) if snr_map is None else snr_map
            m = F.pad(m, (0, 0, 0, 0, 0, self.cfg.channels - c), value=-60.0)  # channels not sent: nothing arrived
        if c < self.cfg.channels:
            latent = F.pad(latent, (0, 0, 0, 0, 0, self.cfg.channels - c))
        emb = self.snr_embed(snr_db, _rate(c, self.cfg, snr_db))
        x = latent.permute(0, 2, 3, 1) * torch.sigmoid(self.mask(emb))[:, None, None, :] * 2
        x = self.head(x)
        if self.cfg.csi_map:
            x = x + self.csi_head(csi_features(m))
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.expands[i - 1](x)
            x = stage(x, emb)
        x = self.out(self.out_norm(x)).permute(0, 3, 1, 2)
        return torch.sigmoid(F.pixel_shuffle(x, self.cfg.patch))


class SwinJSCC(nn.Module):
    """Encoder + decoder pair; the channel sits between them (see :mod:`sccdm.pipeline`)."""

    def __init__(self, cfg: SwinJSCCConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SwinJSCCEncoder(cfg)
        self.decoder = SwinJSCCDecoder(cfg)

    def encode(self, image: torch.Tensor, snr_db: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        return self.encoder(image, snr_db, channels)

    def decode(self, latent: torch.Tensor, snr_db: torch.Tensor, size: tuple[int, int] | None = None,
               snr_map: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(latent, snr_db, snr_map)
        return out if size is None else out[..., : size[0], : size[1]]


SWIN_PRESETS = {
    # The paper / WITT sizes (C = 32 at H/8: CBR 1/12 on 32x32).
    "paper": SwinJSCCConfig(patch=4, dims=(128, 256), depths=(2, 4), heads=(4, 8), window=4, channels=32),
    # Same structure, sized so the whole training fits a few hours on 2 CPU cores.
    "cpu": SwinJSCCConfig(patch=4, dims=(64, 128), depths=(2, 2), heads=(2, 4), window=4, channels=32,
                          snr_dim=32, mlp_ratio=2.0),
}
# The cpu preset with twice the blocks at H/8, where the tokens are fewest (16 per 32x32 image): more capacity
# for +40 % CPU time per step (0.72x the training images/s); grown from a trained cpu codec by adapt_state_dict.
SWIN_PRESETS["cpu-deep"] = replace(SWIN_PRESETS["cpu"], depths=(2, 4))

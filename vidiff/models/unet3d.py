"""Factorized space-time U-Net for pixel-space video diffusion.

Papers: Video Diffusion Models (Ho et al., 2022) -- a 2D U-Net made 3D by per-frame spatial layers
plus temporal attention; Imagen Video (Ho et al., 2022) -- temporal convolutions after spatial ones,
text cross-attention; Make-A-Video / AnimateDiff -- new temporal layers start as identity;
Lumiere (Bar-Tal et al., 2024) -- optional down/up-sampling in time too; MCVD (Voleti et al., 2022)
-- frame conditioning through a per-frame mask on extra input channels. The 2D skeleton (ResBlocks
with scale-shift norm, zero-initialised residual outputs) follows ADM (Dhariwal & Nichol, 2021).

Layout: activations are kept per frame as ``((B T), C, H, W)`` so spatial layers are plain 2D layers;
temporal layers rearrange to ``((B H W), C, T)``. A level of the U-Net is::

    ResBlock (2D, per frame) -> TemporalConv (zero-init)  [-> SpatialTemporalAttention]

and ``SpatialTemporalAttention`` = spatial self-attention -> temporal self-attention (RoPE or relative
bias over frames, zero-init) -> text cross-attention -> MLP. With T == 1 every temporal layer is
skipped exactly, so images and videos train one model (joint image-video training), and a freshly
built model applied to a video equals the same model applied frame by frame.

The network is ``net(x_in, c_noise, **cond) -> raw output`` and never knows the noise
parameterisation (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vidiff.nn.attention import CrossAttention, FeedForward, SelfAttention, resolve_heads
from vidiff.nn.conditioning import ConditionedNet
from vidiff.nn.embeddings import TimestepEmbedding
from vidiff.nn.layout import LayoutPrior
from vidiff.nn.norms import LayerNorm32, group_norm
from vidiff.nn.temporal import TemporalAttention, TemporalConv, TemporalDownsample, TemporalUpsample


@dataclass
class UNet3DConfig:
    """Hyper-parameters of :class:`UNet3D` (travels in every checkpoint as a plain dict).

    ``attention_resolutions`` are **downsample factors** (ADM convention): ``1`` is the input
    resolution, ``2`` half of it, ``4`` a quarter, ... -- level ``i`` of ``channel_mult`` runs at
    factor ``2**i``. Attention (spatial, temporal, cross) is used at those levels and always in the
    middle block.

    ``temporal_downsample``: ``False`` (never), ``True`` (halve T at every spatial downsample) or a
    tuple of downsample indices ``i`` (0 = between level 0 and level 1) at which T is halved as well
    (Lumiere). T == 1 (images) is never downsampled; an odd T > 1 at such a step is an error.

    ``frame_conditioning`` adds ``in_channels + 1`` input channels ``[cond_frames * mask, mask]``
    (MCVD), so one model does text-to-video, image-to-video, continuation and interpolation.
    ``context_dim`` is the text encoder's width (``None``: no cross-attention, unconditional).
    ``pooled_context`` also adds the masked mean of the text tokens, projected, to the noise
    embedding (Imagen): every ResBlock -- temporal convs included -- then sees the prompt, not only
    the attention levels, which is what binds global attributes such as the direction of motion.
    (Ignored by an unconditional model, ``context_dim=None``.)

    ``frame_embedding`` adds an embedding of each frame's position in the clip, ``(i + 0.5) / T``, to
    that frame's noise embedding (the absolute frame positions of AnimateDiff's motion modules): with
    it a frame knows *when* it is, so "moving right" can become "further right later" in every
    ResBlock. Zero-initialised (a fresh block is unchanged); averaged over the frames a temporal
    downsample merges; images (T = 1) get none.

    ``layout_prior`` renders the prompt as a coarse video (:class:`~vidiff.nn.layout.LayoutPrior`:
    an MLP of the pooled prompt gives an ``out_channels x 8 x 8 x 8`` map, trilinearly resized to the
    clip) fed as extra input channels (zero-initialised; needs ``context_dim``): at the highest noise
    levels the best denoiser outputs the prompt's *mean clip*, which the map learns directly.

    ``spatial_coords`` adds two input channels holding each pixel's normalised position ``(y, x)`` in
    ``[-1, 1]`` (CoordConv, Liu et al. 2018). Convolutions are translation-equivariant and cross-
    attention queries carry no position, so without them the net knows *where* it draws only from
    the zero padding -- yet "moving right" means "on the left early, on the right late". Their input
    weights start at zero (a fresh net computes what it would without them). They complement
    ``layout_prior``, which tells the net where a prompted object should be (docs/recipe.md).

    ``gradient_checkpointing`` recomputes every level (ResStage + attention) in the backward pass;
    ``temporal_checkpointing`` only the temporal layers (temporal convs and temporal attention),
    whose saved activations are what grows with the clip length for a cheap recomputation
    (:mod:`vidiff.nn.temporal`; benchmarks/long_clip_memory.py measures both). Neither changes
    the output.

    ``conditions`` lists added conditionings by registered name
    (:data:`vidiff.nn.conditioning.CONDITIONINGS`, docs/architecture.md "Adding a conditioning").

    ``guidance_embed`` (guidance distillation, Meng et al. 2023) adds an embedding of the
    classifier-free-guidance weight ``w`` (cond key ``guidance``, (B,), ``w = 1`` is the conditional
    model, as in :func:`~vidiff.diffusion.guidance.cfg_denoiser`) to the noise embedding. Its last
    layer is zero-initialised, so a fresh guidance-embedded net equals the net without it for every
    ``w``: a student copied from a teacher starts as the teacher's conditional model.
    """

    in_channels: int = 3
    out_channels: int = 3
    model_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (4,)
    num_heads: int = 4
    head_dim: int | None = None  # when set, overrides num_heads: heads = width // head_dim
    context_dim: int | None = None
    pooled_context: bool = False
    temporal_conv: bool = True
    temporal_kernel_size: int = 3
    temporal_attention: bool = True
    temporal_position: str = "rope"  # "rope" | "relative_bias"
    temporal_downsample: bool | tuple[int, ...] = False
    frame_conditioning: bool = False
    dropout: float = 0.0
    use_scale_shift_norm: bool = True
    ff_mult: float = 2.0  # MLP width of the attention block; 0 disables it
    qk_norm: bool = False
    guidance_embed: bool = False
    frame_embedding: bool = False
    layout_prior: bool = False
    spatial_coords: bool = False
    conditions: tuple[str, ...] = ()  # added conditionings (vidiff.nn.conditioning.CONDITIONINGS)
    gradient_checkpointing: bool = False
    temporal_checkpointing: bool = False

    def __post_init__(self) -> None:
        # YAML / JSON give lists; keep tuples so configs compare and hash the same way.
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)
        self.conditions = tuple(self.conditions)
        if not isinstance(self.temporal_downsample, bool):
            self.temporal_downsample = tuple(int(i) for i in self.temporal_downsample)
        n_down = len(self.channel_mult) - 1
        if not self.channel_mult or any(m <= 0 for m in self.channel_mult):
            raise ValueError(
                f"channel_mult must be non-empty positive ints, got {self.channel_mult}"
            )
        for name in ("in_channels", "out_channels", "model_channels", "num_res_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        valid_res = {2**i for i in range(n_down + 1)}
        bad = [r for r in self.attention_resolutions if r not in valid_res]
        if bad:
            raise ValueError(
                f"attention_resolutions {bad} are not downsample factors of this U-Net; "
                f"valid: {sorted(valid_res)} (1 = input resolution)"
            )
        if self.temporal_position not in ("rope", "relative_bias"):
            raise ValueError(
                f"temporal_position must be 'rope' or 'relative_bias', got {self.temporal_position!r}"
            )
        if not isinstance(self.temporal_downsample, bool):
            bad = [i for i in self.temporal_downsample if not 0 <= i < n_down]
            if bad:
                raise ValueError(
                    f"temporal_downsample indices {bad} out of range: this U-Net has {n_down} "
                    f"downsamples (indices 0..{n_down - 1})"
                )
        if self.context_dim is not None and self.context_dim < 1:
            raise ValueError(f"context_dim must be a positive int or None, got {self.context_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        # every attention width (attention levels and the middle block) must split into heads
        attn_mults = {
            m for i, m in enumerate(self.channel_mult) if 2**i in self.attention_resolutions
        }
        for m in attn_mults | {self.channel_mult[-1]}:
            resolve_heads(self.model_channels * m, self.num_heads, self.head_dim)

    @property
    def temporal_down_levels(self) -> tuple[int, ...]:
        """Downsample indices at which T is halved."""
        if self.temporal_downsample is True:
            return tuple(range(len(self.channel_mult) - 1))
        if self.temporal_downsample is False:
            return ()
        return tuple(self.temporal_downsample)

    @classmethod
    def from_dict(cls, d: dict) -> UNet3DConfig:
        """Build from a plain dict (config.json / YAML); unknown keys are an error naming them."""
        from vidiff.models import config_from_dict

        return config_from_dict(cls, d)


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """``(N, 2, H, W)`` pixel-centre coordinates ``(y, x)`` in ``[-1, 1]`` (top-left negative) for a
    batch of frames ``x`` (N, C, H, W), in ``x``'s dtype and device."""
    n, _, h, w = x.shape
    ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, H, W)
    return grid.to(x.dtype)[None].expand(n, 2, h, w)


# --------------------------------------------------------------------------------------------------
# Blocks. Spatial layers see ((B T), C, H, W); ``t`` is the current number of frames.


class ResBlock(nn.Module):
    """ADM residual block on each frame, conditioned on the noise embedding.

    ``use_scale_shift_norm``: ``h = GN(h) * (1 + scale) + shift`` (FiLM; ADM), else ``h + emb``.
    The output conv is zero-initialised, so the block starts as its skip path.
    """

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, dropout: float, use_scale_shift_norm: bool
    ) -> None:
        super().__init__()
        self.use_scale_shift_norm = use_scale_shift_norm
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch if use_scale_shift_norm else out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, t: int) -> torch.Tensor:
        """``x`` ((B t), C, H, W); ``emb`` (B, 1 or T_in, D) noise (and frame) embeddings."""
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(F.silu(emb))  # (B, 1, C): every frame alike, or (B, T_in, C): per frame
        if e.shape[1] == 1:
            e = e.expand(-1, t, -1)
        elif e.shape[1] != t:  # a temporally downsampled level: average the merged frames
            e = e.unflatten(1, (t, -1)).mean(dim=2)
        e = rearrange(e, "b t c -> (b t) c 1 1")
        if self.use_scale_shift_norm:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class ResStage(nn.Module):
    """A spatial ResBlock followed by a zero-initialised temporal conv (Imagen Video)."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, cfg: UNet3DConfig) -> None:
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, cfg.dropout, cfg.use_scale_shift_norm)
        self.temporal = (
            TemporalConv(out_ch, cfg.temporal_kernel_size) if cfg.temporal_conv else None
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor, t: int) -> torch.Tensor:
        x = self.res(x, emb, t)
        if self.temporal is not None:
            x = self.temporal(x, num_frames=t)  # exact identity when t == 1
        return x


class SpatialTemporalAttention(nn.Module):
    """Spatial self-attention, temporal self-attention, text cross-attention and an MLP, each a
    pre-norm residual with a zero-initialised output (ADM / SD transformer block + VDM temporal
    attention). Cross-attention queries all ``T*H*W`` positions of a sample at once, which equals
    per-frame cross-attention without repeating the context T times."""

    def __init__(self, ch: int, cfg: UNet3DConfig) -> None:
        super().__init__()
        heads = resolve_heads(ch, cfg.num_heads, cfg.head_dim)
        self.norm_s = LayerNorm32(ch)
        self.spatial = SelfAttention(ch, heads, qk_norm=cfg.qk_norm, zero_init=True)
        self.temporal = (
            TemporalAttention(ch, heads, position=cfg.temporal_position, qk_norm=cfg.qk_norm)
            if cfg.temporal_attention
            else None
        )
        self.cross = None
        if cfg.context_dim is not None:
            self.norm_c = LayerNorm32(ch)
            self.cross = CrossAttention(
                ch, cfg.context_dim, heads, qk_norm=cfg.qk_norm, zero_init=True
            )
        self.ff = None
        if cfg.ff_mult > 0:
            self.norm_f = LayerNorm32(ch)
            self.ff = FeedForward(ch, cfg.ff_mult, dropout=cfg.dropout, zero_init=True)

    def forward(
        self,
        x: torch.Tensor,
        t: int,
        context: torch.Tensor | None,
        context_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        h, w = x.shape[-2:]
        tok = rearrange(x, "bt c h w -> bt (h w) c")
        tok = tok + self.spatial(self.norm_s(tok), frames=t)  # rows: (b t)
        x = rearrange(tok, "bt (h w) c -> bt c h w", h=h, w=w)
        if self.temporal is not None:
            x = self.temporal(x, num_frames=t)  # exact identity when t == 1
        if self.cross is None and self.ff is None:
            return x
        tok = rearrange(x, "(b t) c h w -> b (t h w) c", t=t)
        if self.cross is not None and context is not None:
            tok = tok + self.cross(self.norm_c(tok), context, context_mask)
        if self.ff is not None:
            tok = tok + self.ff(self.norm_f(tok))
        return rearrange(tok, "b (t h w) c -> (b t) c h w", t=t, h=h, w=w)


class Downsample(nn.Module):
    """Strided 3x3 conv per frame (ADM), optionally followed by Lumiere temporal halving."""

    def __init__(self, ch: int, temporal: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.temporal = TemporalDownsample(ch) if temporal else None

    def forward(self, x: torch.Tensor, t: int) -> tuple[torch.Tensor, int]:
        x = self.conv(x)
        if self.temporal is not None and t > 1:
            x = self.temporal(x, num_frames=t)
            t //= 2
        return x, t


class Upsample(nn.Module):
    """Nearest 2x + 3x3 conv per frame (ADM), optionally followed by Lumiere temporal doubling."""

    def __init__(self, ch: int, temporal: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.temporal = TemporalUpsample(ch) if temporal else None

    def forward(self, x: torch.Tensor, t: int, t_out: int) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.temporal is not None:
            x = self.temporal(x, t_out, num_frames=t)
        return x


class Level(nn.Module):
    """One U-Net step: a ResStage and, at attention resolutions, a SpatialTemporalAttention."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, cfg: UNet3DConfig, attn: bool
    ) -> None:
        super().__init__()
        self.res = ResStage(in_ch, out_ch, emb_dim, cfg)
        self.attn = SpatialTemporalAttention(out_ch, cfg) if attn else None

    def forward(self, x, emb, t, context, context_mask):
        x = self.res(x, emb, t)
        if self.attn is not None:
            x = self.attn(x, t, context, context_mask)
        return x


# --------------------------------------------------------------------------------------------------


class UNet3D(ConditionedNet):
    """Factorized space-time U-Net: ``forward(x_in, c_noise, **cond) -> (B, out_channels, T, H, W)``.

    Inputs: ``x_in`` (B, C, T, H, W) in model space; ``c_noise`` (B,) on a 0..1000-ish scale; the
    cond keys the net declares in ``self.conditions`` (:mod:`vidiff.nn.conditioning`: text
    ``context``/``context_mask``, known frames ``cond_frames``/``frame_mask``, the guidance weight,
    added ones). ``cond_frames=None`` means "nothing known", so text-only sampling works on a
    frame-conditioned model; ``context=None`` skips cross-attention (classifier-free guidance's null
    prompt is the encoded empty prompt ``""``, what training saw).
    H and W must be divisible by ``2 ** (len(channel_mult) - 1)``.
    """

    def __init__(self, config: UNet3DConfig) -> None:
        super().__init__()
        self.config = cfg = config
        mc = cfg.model_channels
        emb_dim = 4 * mc
        # noise embedding, pooled text, guidance weight and added conditionings
        self.build_conditioning(cfg, emb_dim)
        # each frame's position, starting as "no change" (STYLE 10)
        self.frame_embed = (
            TimestepEmbedding(256, emb_dim, zero_init=True) if cfg.frame_embedding else None
        )
        self.layout = None
        in_ch = cfg.in_channels + self.cond_channels
        if cfg.layout_prior and cfg.context_dim is not None:
            self.layout = LayoutPrior(cfg.context_dim, emb_dim, cfg.out_channels)
            in_ch += cfg.out_channels
        self.input_conv = nn.Conv2d(in_ch + 2 * cfg.spatial_coords, mc, 3, padding=1)
        if cfg.spatial_coords:
            nn.init.zeros_(self.input_conv.weight[:, in_ch:])
        self.zero_cond_channels(self.input_channels_view(self.input_conv.weight))
        t_down = set(cfg.temporal_down_levels)

        self.down = nn.ModuleList()
        skips, ch, ds = [mc], mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(
                    Level(ch, mc * mult, emb_dim, cfg, ds in cfg.attention_resolutions)
                )
                ch = mc * mult
                skips.append(ch)
            if level < len(cfg.channel_mult) - 1:
                self.down.append(Downsample(ch, temporal=level in t_down))
                skips.append(ch)
                ds *= 2

        self.mid1 = Level(ch, ch, emb_dim, cfg, attn=True)
        self.mid2 = Level(ch, ch, emb_dim, cfg, attn=False)

        self.up = nn.ModuleList()
        self.upsamplers = nn.ModuleDict()  # keyed by the index in self.up after which it runs
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                self.up.append(
                    Level(
                        ch + skips.pop(), mc * mult, emb_dim, cfg, ds in cfg.attention_resolutions
                    )
                )
                ch = mc * mult
                if level > 0 and i == cfg.num_res_blocks:
                    self.upsamplers[str(len(self.up) - 1)] = Upsample(
                        ch, temporal=(level - 1) in t_down
                    )
                    ds //= 2

        self.out_norm = group_norm(ch)
        self.out_conv = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)  # the network starts by predicting 0
        nn.init.zeros_(self.out_conv.bias)
        for m in self.modules():
            if isinstance(m, (TemporalConv, TemporalAttention)):
                m.checkpointing = cfg.temporal_checkpointing

    # -- input handling --------------------------------------------------------------------------

    def _check_inputs(self, x, c_noise, cond) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        c_noise, cond = self.check_conditions(x, c_noise, cond)
        t, h, w = x.shape[2:]
        f = 2 ** (len(cfg.channel_mult) - 1)
        if h % f or w % f:
            raise ValueError(
                f"H, W = {h}, {w} must be divisible by {f} for channel_mult={cfg.channel_mult}"
            )
        tt = t
        for _ in cfg.temporal_down_levels:
            if tt > 1 and tt % 2:
                raise ValueError(
                    f"T={t} cannot be halved {len(cfg.temporal_down_levels)} times "
                    f"(temporal_downsample={cfg.temporal_downsample}); use T=1 or a multiple of "
                    f"{2 ** len(cfg.temporal_down_levels)}"
                )
            tt = max(tt // 2, 1)
        return c_noise, cond

    # -- forward ---------------------------------------------------------------------------------

    input_weight = "input_conv.weight"

    def input_channels_view(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.transpose(1, 3)  # (out, kw, kh, in)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, **cond) -> torch.Tensor:
        c_noise, cond = self._check_inputs(x_in, c_noise, cond)
        b, _, t, _, _ = x_in.shape
        x = self.input_with_conditions(x_in, cond)
        # (B, 4 * model_channels): noise level, pooled prompt, guidance weight, ...
        emb, frame_emb, context, context_mask = self.embed_conditions(c_noise, cond, x.dtype)
        emb = emb[:, None]  # (B, 1, D): the same for every frame ...
        if frame_emb is not None:  # ... unless a conditioning is per frame (B, T, D)
            emb = emb + frame_emb
        if self.frame_embed is not None and t > 1:  # ... or each frame embeds its position
            position = (torch.arange(t, device=emb.device, dtype=torch.float32) + 0.5) / t
            emb = emb + self.frame_embed(1000.0 * position)[None]  # (B, T, D)

        if self.layout is not None:
            x = torch.cat([x, self.layout.render(context, context_mask, x)], dim=1)
        x = rearrange(x, "b c t h w -> (b t) c h w")
        if self.config.spatial_coords:
            x = torch.cat([x, coordinate_channels(x)], dim=1)
        h = self.input_conv(x)
        hs = [(h, t)]
        for block in self.down:
            if isinstance(block, Downsample):
                h, t = block(h, t)
            else:
                h = self._run(block, h, emb, t, context, context_mask)
            hs.append((h, t))

        h = self._run(self.mid1, h, emb, t, context, context_mask)
        h = self._run(self.mid2, h, emb, t, context, context_mask)

        for i, block in enumerate(self.up):
            skip, _ = hs.pop()
            h = self._run(block, torch.cat([h, skip], dim=1), emb, t, context, context_mask)
            if str(i) in self.upsamplers:
                t_out = hs[-1][1]  # the skip we consume next was taken before the downsample
                h = self.upsamplers[str(i)](h, t, t_out)
                t = t_out

        out = self.out_conv(F.silu(self.out_norm(h)))
        return rearrange(out, "(b t) c h w -> b c t h w", b=b)


# --------------------------------------------------------------------------------------------------
# Presets. ``context_dim`` is left None: the pipeline sets it to its text encoder's ``.dim``
# (``build_model("unet3d", "unet-tiny", context_dim=encoder.dim)``).

# What the small presets share: attention only at 8x8 and 4x4 of a 32x32 clip, 32-wide heads, the
# pooled caption in the time embedding.
_SMALL = dict(attention_resolutions=(4, 8), head_dim=32, pooled_context=True)

UNET_PRESETS: dict[str, UNet3DConfig] = {
    # ~1.6M parameters, ~11 GFLOP fwd+bwd per 16x32x32 clip: tests and CPU training. Few channels at
    # full resolution (where a 32x32 frame costs most), the width in the 8x8 and 4x4 levels with
    # attention.
    "unet-tiny": UNet3DConfig(
        model_channels=16,
        channel_mult=(1, 2, 4, 4),
        num_res_blocks=1,
        **_SMALL,
    ),
    # ~15M parameters, ~74 GFLOP per clip: a stronger CPU / small-GPU model.
    "unet-small": UNet3DConfig(
        model_channels=32,
        channel_mult=(1, 2, 4, 6),
        num_res_blocks=2,
        **_SMALL,
    ),
    # ~6.2M parameters, ~13 GFLOP per clip: CPU training throughput at make-a-video-pytorch's
    # SpaceTimeUnet size (benchmarks/unet_speed.py). unet-tiny's 16 channels at full resolution, the
    # width at 8x8 and 4x4, where those levels run on T/2 and T/4 frames (Lumiere): clips need T
    # divisible by 4 (or T = 1).
    "unet-cpu": UNet3DConfig(
        model_channels=16,
        channel_mult=(1, 2, 6, 10),
        num_res_blocks=1,
        **_SMALL,
        temporal_downsample=(1, 2),
    ),
    # ~140M parameters: GPU training at 64x64 and above.
    "unet-base": UNet3DConfig(
        model_channels=128,
        channel_mult=(1, 2, 3, 4),
        num_res_blocks=2,
        attention_resolutions=(2, 4, 8),
        head_dim=64,
        pooled_context=True,
        dropout=0.1,
    ),
}


__all__ = ["UNET_PRESETS", "UNet3D", "UNet3DConfig", "coordinate_channels"]

"""Spatio-temporal diffusion transformer (video DiT) on pixels or VAE latents.

Papers: DiT (Peebles & Xie, 2023) -- patch tokens, adaLN-Zero conditioning on the noise level, a
zero-initialised final layer; Sora (OpenAI, 2024), Open-Sora and Wan (2025) -- spacetime patches
``(pt, ph, pw)`` of a (latent) video, 3D RoPE, joint spatio-temporal attention; Latte (Ma et al., 2024)
-- factorized attention, alternating spatial and temporal blocks; WALT (Gupta et al., 2023) --
windowed attention, alternating spatial windows inside a frame and spatio-temporal 3D windows
(shifted windows as in Swin, Liu et al. 2021, optional); PixArt-alpha (Chen et al., 2023) -- text
by cross-attention inside each block; Imagen -- pooled text added to the noise embedding; MCVD
(Voleti et al., 2022) -- frame conditioning through a per-frame mask on extra input channels;
guidance-weight embedding for guidance distillation (Meng et al., 2023; flux-dev's ``guidance_in``).

Data flow (shapes for ``x_in`` (B, C, T, H, W))::

    [x_in, cond_frames * mask, mask]        (B, C', T, H, W)   MCVD channels, frame_conditioning only
    [+ the prompt's coarse clip]                               layout_prior only (nn/layout.py)
    pad T to a multiple of pt               (B, C', T', H, W)  replicate the last frame (see below)
    patchify + Linear                       (B, L, D)          L = T'/pt * H/ph * W/pw tokens, (t h w)
    [+ 3D sincos position]                                     "sincos" in position; "rope" rotates q, k
    depth x DiTBlock(window_i)              (B, L, D)
    final adaLN + Linear (zero-init)        (B, L, pt*ph*pw*C_out)
    unpatchify, crop T' -> T                (B, C_out, T, H, W)

**Every attention mode is windowed self-attention.** Block ``i`` attends within non-overlapping 3D
windows of ``(wt, wh, ww)`` tokens, ``None`` meaning "the whole axis": ``full`` is ``(None, None, None)``
in every block; ``factorized`` alternates ``(1, None, None)`` (spatial: one frame) and ``(None, 1, 1)``
(temporal: one spatial position); ``windowed`` alternates ``(1, *spatial_window)`` (WALT's spatial
window; ``spatial_window=None`` = the whole frame, as WALT) and ``window_size`` (WALT's spatio-temporal
window). One code path (:func:`partition`) serves all three, so the modes differ only in cost:
full grows as ``L^2``, factorized as ``T (HW)^2 + HW T^2``, windowed as ``L * |window|``.

Windows that do not tile the token grid (e.g. a latent with T = 5 and ``wt = 4``) and shifted windows
(``window_shift``: every second block of each kind is offset by half a window, Swin) are handled by
zero-padding the grid and masking the padded keys, never by wrap-around (Swin's cyclic shift would let
the last frame attend to the first). A window larger than the grid is clipped to it.

**T = 1 (images, joint image-video training).** Temporal blocks (``(None, 1, 1)`` windows) are skipped
when the token grid has one frame, exactly as the U-Net skips its temporal layers, so images never
touch temporal weights. With ``pt > 1`` the clip is padded in time to a multiple of ``pt`` by repeating
its last frame (an image becomes a still ``pt``-frame clip; a causal-VAE latent with ``1 + T/4`` frames
fits any ``pt``) and the output is cropped back: padded frames never reach the caller.

The network is ``net(x_in, c_noise, **cond) -> raw output`` and never knows the noise
parameterisation (docs/architecture.md); it is used by ``VideoPipeline`` and every sampler unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from vidiff.nn.attention import CrossAttention, FeedForward, SelfAttention, resolve_heads
from vidiff.nn.conditioning import ConditionedNet, network_conditions
from vidiff.nn.embeddings import timestep_embedding
from vidiff.nn.layout import LayoutPrior
from vidiff.nn.norms import LayerNorm32, modulate
from vidiff.nn.rope import RoPE

ATTENTION_MODES = ("full", "factorized", "windowed")
POSITIONS = ("rope", "sincos", "rope+sincos")

Window = tuple[int | None, int | None, int | None]


def _opt_tuple(v, n: int, name: str) -> tuple[int, ...] | None:
    if v is None:
        return None
    v = tuple(int(i) for i in v)
    if len(v) != n or any(i < 1 for i in v):
        raise ValueError(f"{name} must be {n} positive ints, got {v}")
    return v


@dataclass
class DiTConfig:
    """Hyper-parameters of :class:`VideoDiT` (travels in every checkpoint as a plain dict).

    ``patch_size`` ``(pt, ph, pw)``: H and W must be divisible by ``ph``, ``pw``; T is padded to a
    multiple of ``pt`` (module docstring). ``attention``: ``full`` | ``factorized`` | ``windowed``.
    ``window_size`` ``(wt, wh, ww)`` (tokens) is the spatio-temporal window of ``windowed`` mode and
    ``spatial_window`` ``(wh, ww)`` its spatial one (``None`` = whole frame); ``window_shift`` offsets
    every second window of each kind by half a window (Swin). ``position``: ``rope`` (3D RoPE on q, k,
    head dim split as Wan: ``d - 4*(d//6)`` for t, ``2*(d//6)`` each for h, w) or ``sincos`` (factorized
    3D sinusoids added to the tokens, same split of the width) or ``rope+sincos`` (both: RoPE alone
    only sees offsets, so a net has no absolute place or frame index to put a prompted object at --
    docs/latent-dit.md, "Why the latent DiT did not learn direction"). ``context_dim`` is the text
    encoder's width, set by the pipeline (``None``: no cross-attention). ``pooled_context`` adds the
    masked mean of the text tokens to the noise embedding (as the U-Net). ``guidance_embed`` adds an
    embedding of the cond key ``guidance`` (B,) -- the classifier-free guidance weight a guidance-
    distilled student is asked for; embedded as ``TimestepEmbedding(1000 * w)`` like flux-dev -- whose
    last layer is zero-initialised, so a fresh model equals the unguided one. ``frame_conditioning``:
    MCVD input channels ``[x, cond_frames * mask, mask]``. ``conditions``: added conditionings by
    registered name (docs/architecture.md, "Adding a conditioning"). ``layout_prior``: the pooled
    prompt rendered as a coarse clip (:class:`~vidiff.nn.layout.LayoutPrior`) joins the input
    channels, as the U-Net's (needs ``context_dim``; zero-initialised).
    """

    in_channels: int = 3
    out_channels: int = 3
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 128
    depth: int = 6
    num_heads: int = 4
    head_dim: int | None = None  # when set, overrides num_heads: heads = hidden_size // head_dim
    mlp_ratio: float = 4.0
    attention: str = "full"  # full | factorized | windowed
    window_size: tuple[int, int, int] = (4, 4, 4)
    spatial_window: tuple[int, int] | None = None
    window_shift: bool = False
    position: str = "rope"  # rope | sincos | rope+sincos
    rope_theta: float = 10000.0
    context_dim: int | None = None
    pooled_context: bool = True
    frame_conditioning: bool = False
    guidance_embed: bool = False
    qk_norm: bool = False
    dropout: float = 0.0
    conditions: tuple[str, ...] = ()  # added conditionings (vidiff.nn.conditioning.CONDITIONINGS)
    layout_prior: bool = False
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        # YAML / JSON give lists; keep tuples so configs compare and hash the same way.
        self.patch_size = _opt_tuple(self.patch_size, 3, "patch_size")
        self.window_size = _opt_tuple(self.window_size, 3, "window_size")
        self.spatial_window = _opt_tuple(self.spatial_window, 2, "spatial_window")
        self.conditions = tuple(self.conditions)
        for name in ("in_channels", "out_channels", "hidden_size", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {self.attention!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.context_dim is not None and self.context_dim < 1:
            raise ValueError(f"context_dim must be a positive int or None, got {self.context_dim}")
        heads = resolve_heads(self.hidden_size, self.num_heads, self.head_dim)
        hd = self.hidden_size // heads
        if "rope" in self.position and (hd % 2 or hd < 6):
            raise ValueError(
                f"position='rope' splits the head dim over (t, h, w) in even chunks; "
                f"head dim {hd} (hidden_size={self.hidden_size}, {heads} heads) must be even and >= 6"
            )
        if "sincos" in self.position and (self.hidden_size % 2 or self.hidden_size < 6):
            raise ValueError(
                f"position='sincos' needs an even hidden_size >= 6, got {self.hidden_size}"
            )

    @property
    def heads(self) -> int:
        return resolve_heads(self.hidden_size, self.num_heads, self.head_dim)

    def block_windows(self) -> list[tuple[Window, bool]]:
        """Per block: its attention window ``(wt, wh, ww)`` in tokens (None = whole axis) and whether
        it is shifted by half a window."""
        out: list[tuple[Window, bool]] = []
        for i in range(self.depth):
            kind, nth = i % 2, i // 2  # alternating block kinds; nth block of its kind
            if self.attention == "full":
                out.append(((None, None, None), False))
            elif self.attention == "factorized":
                out.append(((1, None, None) if kind == 0 else (None, 1, 1), False))
            else:
                sw = self.spatial_window or (None, None)
                win = (1, *sw) if kind == 0 else self.window_size
                out.append((win, self.window_shift and nth % 2 == 1))
        return out

    @classmethod
    def from_dict(cls, d: dict) -> DiTConfig:
        """Build from a plain dict (config.json / YAML); unknown keys are an error naming them."""
        from vidiff.models import config_from_dict

        return config_from_dict(cls, d)


# --------------------------------------------------------------------------------------------------
# Windows: one partition for full / spatial / temporal / WALT windows, with padding and shift.


def axis_split(dim: int) -> tuple[int, int, int]:
    """Split ``dim`` channels over (t, h, w) in even chunks as Wan's 3D RoPE: ``d - 4*(d//6)``, ``2*(d//6)``, ``2*(d//6)``."""
    s = 2 * (dim // 6)
    return dim - 2 * s, s, s


@dataclass(frozen=True)
class WindowPlan:
    """How a token grid ``(T, H, W)`` is cut into windows ``(wt, wh, ww)``: per axis the front pad
    (the shift) and the padded length, a multiple of the window."""

    grid: tuple[int, int, int]
    window: tuple[int, int, int]
    front: tuple[int, int, int]
    padded: tuple[int, int, int]

    @property
    def needs_pad(self) -> bool:
        return self.padded != self.grid

    @property
    def tokens(self) -> int:
        return math.prod(self.window)


def plan_windows(grid: tuple[int, int, int], window: Window, shift: bool = False) -> WindowPlan:
    """Effective windows (clipped to the grid) and padding; a shifted window starts half a window
    early (Swin), implemented by zero-padding in front rather than a cyclic roll."""
    win, front, padded = [], [], []
    for n, w in zip(grid, window):
        e = n if w is None else min(w, n)
        s = e // 2 if shift and e < n else 0
        win.append(e)
        front.append(s)
        padded.append(-(-(n + s) // e) * e)
    return WindowPlan(tuple(grid), tuple(win), tuple(front), tuple(padded))


def partition(x: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
    """Tokens (B, T*H*W, D) in (t h w) order -> windows (B * num_windows, wt*wh*ww, D)."""
    t, h, w = plan.grid
    x = rearrange(x, "b (t h w) d -> b t h w d", t=t, h=h, w=w)
    if plan.needs_pad:
        (ft, fh, fw), (pt, ph, pw) = plan.front, plan.padded
        x = F.pad(x, (0, 0, fw, pw - w - fw, fh, ph - h - fh, ft, pt - t - ft))
    wt, wh, ww = plan.window
    return rearrange(
        x, "b (nt wt) (nh wh) (nw ww) d -> (b nt nh nw) (wt wh ww) d", wt=wt, wh=wh, ww=ww
    )


def unpartition(x: torch.Tensor, plan: WindowPlan, batch: int) -> torch.Tensor:
    """Inverse of :func:`partition`, padding cropped: (B * num_windows, N, D) -> (B, T*H*W, D)."""
    (wt, wh, ww), (pt, ph, pw) = plan.window, plan.padded
    x = rearrange(
        x,
        "(b nt nh nw) (wt wh ww) d -> b (nt wt) (nh wh) (nw ww) d",
        b=batch,
        nt=pt // wt,
        nh=ph // wh,
        nw=pw // ww,
        wt=wt,
        wh=wh,
    )
    (t, h, w), (ft, fh, fw) = plan.grid, plan.front
    x = x[:, ft : ft + t, fh : fh + h, fw : fw + w]
    return rearrange(x, "b t h w d -> b (t h w) d")


def window_bias(plan: WindowPlan, batch: int, device: torch.device) -> torch.Tensor | None:
    """Additive attention bias (B * num_windows, 1, N, N) that hides padded keys (``-inf``); a padded
    query may see itself so no row is empty (its output is cropped). ``None`` when nothing is padded."""
    if not plan.needs_pad:
        return None
    valid = torch.zeros(plan.padded, dtype=torch.bool, device=device)
    (t, h, w), (ft, fh, fw) = plan.grid, plan.front
    valid[ft : ft + t, fh : fh + h, fw : fw + w] = True
    wt, wh, ww = plan.window
    valid = rearrange(
        valid, "(nt wt) (nh wh) (nw ww) -> (nt nh nw) (wt wh ww)", wt=wt, wh=wh, ww=ww
    )
    eye = torch.eye(plan.tokens, dtype=torch.bool, device=device)
    allowed = valid[:, None, :] | eye  # (num_windows, N query, N key)
    bias = torch.zeros(allowed.shape, device=device).masked_fill(~allowed, float("-inf"))
    return bias.repeat(batch, 1, 1).unsqueeze(1)


def window_positions(window: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """Window-local (t, h, w) coordinates (N, 3). RoPE only sees offsets, so local coordinates give
    exactly the attention of global ones (padding in front keeps offsets intact)."""
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in window]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def sincos_3d(grid: tuple[int, int, int], dim: int, device: torch.device) -> torch.Tensor:
    """Factorized 3D sinusoidal position embedding (L, dim): per axis the DDPM/Transformer sinusoid
    of the token index over its share of ``dim`` (:func:`axis_split`), concatenated (Latte / DiT's
    2D sincos extended to time)."""
    pos = window_positions(grid, device)
    return torch.cat(
        [timestep_embedding(pos[:, i], d) for i, d in enumerate(axis_split(dim))], dim=-1
    )


# --------------------------------------------------------------------------------------------------
# Blocks


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block (DiT) with windowed self-attention, text cross-attention (PixArt)
    and an MLP::

        x += gate_a * Attn_window(modulate(LN(x), shift_a, scale_a))
        x += CrossAttn(LN(x), text)                      (zero-initialised output projection)
        x += gate_m * MLP(modulate(LN(x), shift_m, scale_m))

    The six modulation vectors come from one zero-initialised Linear on SiLU(emb), so a fresh block is
    the identity. ``window`` (tokens, None = whole axis) and ``shift`` select the attention pattern.
    """

    def __init__(self, cfg: DiTConfig, window: Window, shift: bool) -> None:
        super().__init__()
        d, heads = cfg.hidden_size, cfg.heads
        self.window, self.shift = window, shift
        self.norm1 = LayerNorm32(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, heads, qk_norm=cfg.qk_norm, dropout=cfg.dropout)
        self.cross = None
        if cfg.context_dim is not None:
            self.norm2 = LayerNorm32(d, eps=1e-6)
            self.cross = CrossAttention(
                d, cfg.context_dim, heads, qk_norm=cfg.qk_norm, dropout=cfg.dropout, zero_init=True
            )
        self.norm3 = LayerNorm32(d, elementwise_affine=False, eps=1e-6)
        self.mlp = FeedForward(d, cfg.mlp_ratio, dropout=cfg.dropout)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        nn.init.zeros_(self.ada[-1].weight)  # adaLN-Zero: gates start at 0 -> identity block
        nn.init.zeros_(self.ada[-1].bias)

    @property
    def is_temporal(self) -> bool:
        """A pure temporal block (one spatial position per window): skipped for 1-frame grids."""
        return self.window[1:] == (1, 1) and self.window[0] != 1

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        grid: tuple[int, int, int],
        rope: RoPE | None,
        context: torch.Tensor | None,
        context_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        b = x.shape[0]
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.ada(emb).chunk(6, dim=-1)
        plan = plan_windows(grid, self.window, self.shift)
        h = partition(modulate(self.norm1(x), shift_a, scale_a), plan)  # (B*nW, N, D)
        rot = None if rope is None else rope(window_positions(plan.window, x.device))
        # Rows of one sample, for an attention processor (cross-frame attention): one per frame in
        # whole-frame spatial blocks, one per sample in full blocks; other windows take none.
        rows = {(1, *grid[1:]): grid[0], grid: 1}.get(plan.window) if not plan.needs_pad else None
        h = self.attn(h, rope=rot, bias=window_bias(plan, b, x.device), frames=rows)
        if gate_a.ndim == 2:  # (B, D) for the whole sample, else (B, L, D) per token
            gate_a, gate_m = gate_a.unsqueeze(1), gate_m.unsqueeze(1)
        x = x + gate_a * unpartition(h, plan, b)
        if self.cross is not None and context is not None:
            x = x + self.cross(self.norm2(x), context, context_mask)
        return x + gate_m * self.mlp(modulate(self.norm3(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """DiT's final layer: adaLN (shift, scale) + Linear to patch pixels, all zero-initialised, so a
    fresh network outputs 0 (as the U-Net's zero output conv)."""

    def __init__(self, d: int, out: int) -> None:
        super().__init__()
        self.norm = LayerNorm32(d, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.linear = nn.Linear(d, out)
        for layer in (self.ada[-1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(emb).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


# --------------------------------------------------------------------------------------------------


class VideoDiT(ConditionedNet):
    """Video diffusion transformer: ``forward(x_in, c_noise, **cond) -> (B, out_channels, T, H, W)``.

    Inputs: ``x_in`` (B, C, T, H, W) in model space (pixels or VAE latents); ``c_noise`` (B,) on a
    0..1000-ish scale; the cond keys declared in ``self.conditions`` (:mod:`vidiff.nn.conditioning`),
    embedded by the same code as the U-Net's. Same contract as :class:`~vidiff.models.unet3d.UNet3D`.
    """

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.hidden_size
        pt, ph, pw = cfg.patch_size
        specs = network_conditions(cfg)
        in_ch = cfg.in_channels + sum(s.channels for s in specs if s.kind == "channels")
        layout = cfg.layout_prior and cfg.context_dim is not None
        in_ch += cfg.out_channels * layout
        self.patch_embed = nn.Linear(in_ch * pt * ph * pw, d)
        # noise embedding, pooled text, guidance weight and added conditionings (after
        # patch_embed: parameter order and initial values as before)
        self.build_conditioning(cfg, d)
        # tokens are patchified as (pt ph pw c): input channel innermost
        self.zero_cond_channels(self.input_channels_view(self.patch_embed.weight))
        # made after the input layers, which so start as they would without it
        self.layout = LayoutPrior(cfg.context_dim, d, cfg.out_channels) if layout else None
        self.rope = (
            RoPE(axis_split(d // cfg.heads), theta=cfg.rope_theta)
            if "rope" in cfg.position
            else None
        )
        self.blocks = nn.ModuleList(DiTBlock(cfg, w, s) for w, s in cfg.block_windows())
        self.final = FinalLayer(d, cfg.out_channels * pt * ph * pw)

    # -- input handling --------------------------------------------------------------------------

    def _check_inputs(self, x, c_noise, cond) -> tuple[torch.Tensor, dict]:
        cfg = self.config
        c_noise, cond = self.check_conditions(x, c_noise, cond)
        h, w = x.shape[3:]
        _, ph, pw = cfg.patch_size
        if h % ph or w % pw:
            raise ValueError(
                f"H, W = {h}, {w} must be divisible by the patch size (ph, pw) = {(ph, pw)}"
            )
        return c_noise, cond

    # -- forward ---------------------------------------------------------------------------------

    input_weight = "patch_embed.weight"

    def input_channels_view(self, weight: torch.Tensor) -> torch.Tensor:
        pt, ph, pw = self.config.patch_size
        return weight.view(weight.shape[0], pt * ph * pw, -1)  # (D, patch, in)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, **cond) -> torch.Tensor:
        c_noise, cond = self._check_inputs(x_in, c_noise, cond)
        cfg = self.config
        b, _, t, h, w = x_in.shape
        pt, ph, pw = cfg.patch_size
        x = self.input_with_conditions(x_in, cond)
        # (B, D): noise level, pooled prompt, guidance weight, ...
        emb, frame_emb, context, context_mask = self.embed_conditions(c_noise, cond, x.dtype)
        if self.layout is not None:  # the prompt's coarse clip as input channels
            x = torch.cat([x, self.layout.render(context, context_mask, x)], dim=1)
        t_pad = -t % pt
        if t_pad:  # repeat the last frame (mask channel included) up to a multiple of pt
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, t_pad, -1, -1)], dim=2)
        grid = ((t + t_pad) // pt, h // ph, w // pw)

        tok = rearrange(
            x, "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw c)", pt=pt, ph=ph, pw=pw
        )
        tok = self.patch_embed(tok)  # (B, L, D)
        if "sincos" in cfg.position:
            tok = tok + sincos_3d(grid, cfg.hidden_size, tok.device).to(tok.dtype)

        if frame_emb is not None:  # per-frame vectors: adaLN per token, from its frame (B, L, D)
            if t_pad:
                frame_emb = torch.cat([frame_emb, frame_emb[:, -1:].expand(-1, t_pad, -1)], 1)
            frame_emb = rearrange(frame_emb, "b (t pt) d -> b t pt d", pt=pt).mean(2)
            frame_emb = repeat(frame_emb, "b t d -> b (t hw) d", hw=grid[1] * grid[2])
            emb = emb[:, None] + frame_emb

        for block in self.blocks:
            if grid[0] == 1 and block.is_temporal:
                continue  # images skip temporal blocks exactly (joint image-video training)
            tok = self._run(block, tok, emb, grid, self.rope, context, context_mask)

        out = self.final(tok, emb)  # (B, L, pt*ph*pw*C_out)
        out = rearrange(
            out,
            "b (t h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
            t=grid[0],
            h=grid[1],
            w=grid[2],
            pt=pt,
            ph=ph,
            pw=pw,
        )
        return out[:, :, :t]


# --------------------------------------------------------------------------------------------------
# Presets. ``context_dim`` is left None: the pipeline sets it to its text encoder's ``.dim``
# (``build_model("dit", "dit-tiny", context_dim=encoder.dim)``). Patch (1, 2, 2) suits VAE latents;
# on 32x32 pixels use ``patch_size: [1, 4, 4]`` (configs/shapes-dit-pixel-tiny.yaml).

DIT_PRESETS: dict[str, DiTConfig] = {
    # ~2.2M parameters (with a 64-wide text encoder): tests and CPU training. Factorized attention
    # (Latte) keeps 16 frames x 64 tokens cheap on one core.
    "dit-tiny": DiTConfig(
        hidden_size=128, depth=6, head_dim=32, mlp_ratio=4.0, attention="factorized"
    ),
    # ~37M parameters (DiT-S width): a small-GPU model, full spatio-temporal attention (Sora / Wan).
    "dit-small": DiTConfig(hidden_size=384, depth=12, head_dim=64, attention="full", qk_norm=True),
    # ~145M parameters (DiT-B width): GPU training on latents.
    "dit-base": DiTConfig(hidden_size=768, depth=12, head_dim=64, attention="full", qk_norm=True),
}


__all__ = [
    "ATTENTION_MODES",
    "DIT_PRESETS",
    "DiTBlock",
    "DiTConfig",
    "VideoDiT",
    "WindowPlan",
    "partition",
    "plan_windows",
    "unpartition",
]

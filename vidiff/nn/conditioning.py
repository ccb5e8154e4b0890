"""Conditioning as data: what a network takes besides ``(x_in, c_noise)``, declared as specs.

A network is ``net(x_in, c_noise, **cond)`` (docs/architecture.md). Each key of ``cond`` is described
by one :class:`CondSpec`, and a network declares the tuple it takes as ``net.conditions`` (built from
its config by :func:`network_conditions`). Everything else reads the declaration instead of naming
keys: :class:`ConditionedNet` validates a call and embeds the conditionings for both architectures,
classifier-free guidance (:func:`~vidiff.diffusion.guidance.cfg_denoiser`) takes each spec's null
value and pads token sequences, and the losses find the known-frame mask. (k-diffusion passes every
conditioning through one ``extra_args`` dict; ComfyUI passes typed conditionings.)

A spec's ``kind`` says how it reaches the network:

* ``tokens`` ``(B, L, D)``: keys/values of every cross-attention (text, PixArt / Imagen); with
  ``pool`` its masked mean, projected, is also added to the noise embedding (Imagen).
* ``channels``: concatenated to ``x_in`` on channels by ``to_channels`` (MCVD's
  ``[cond_frames * mask, mask]``); absent = zeros, so the net also serves calls without it.
* ``vector``: embedded by the module ``embed`` builds (``features`` maps the value to that module's
  input) and added to the noise embedding: ``(B, D)`` for the whole clip (the guidance weight), or
  ``(B, T, D)`` per frame (``per_frame``, e.g. camera motion per frame).
* ``mask``: a companion of another spec (``context_mask``, ``frame_mask``): checked, then read by
  its owner, never embedded alone.

New conditionings start at zero (zero-initialised last layer or input weights), so adding one to a
trained model leaves its outputs unchanged (STYLE 10). A spec's module is registered on the network
under ``spec.module``, which is part of the state-dict keys and must never change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidiff.nn.embeddings import TimestepEmbedding, masked_mean

KINDS = ("tokens", "channels", "vector", "mask")
# What the unconditional half of classifier-free guidance gets: the same value ("keep": known
# frames are known in both halves), zeros ("zeros"), or the pipeline's null input for this key
# ("source": the text encoder's empty prompt, what caption dropout trained).
NULLS = ("keep", "zeros", "source")
# Shape symbols bound by ``x_in`` (B, C, T, H, W); any other name is bound by the first key using it.
X_SYMBOLS = ("B", "C", "T", "H", "W")

# The guidance weight w is embedded as ``GUIDANCE_EMBED_SCALE * w``: weights ~1..15 then span the
# frequencies the 0..1000 noise scale uses (flux-dev's ``guidance_in``).
GUIDANCE_EMBED_SCALE = 1000.0

# The built-in cond keys (docs/architecture.md). Wrappers that produce one name it through these.
CONTEXT, CONTEXT_MASK = "context", "context_mask"
COND_FRAMES, FRAME_MASK = "cond_frames", "frame_mask"
GUIDANCE = "guidance"


@dataclass(frozen=True)
class CondSpec:
    """One conditioning input of a network: its cond key, shape rule, embedding and null value.

    ``shape``: one entry per dim, an int (exact), one of ``B C T H W`` (that dim of ``x_in``) or
    another name bound by the first key using it (``L`` = the text length). A ``(B,)`` spec also
    accepts a number or 0-d tensor (broadcast to the batch). ``enabled_by`` names the config field
    that switches it on (for error messages). ``mask``: the companion mask key, ``mask_required``
    whether the two always come together. ``loss_mask``: a ``(B, T)`` mask of known frames that
    the losses skip.
    """

    name: str
    kind: str
    shape: tuple[int | str, ...]
    enabled_by: str
    dtype: torch.dtype = torch.float32  # only bool is enforced; floats are cast by the net
    null: str = "keep"
    required: bool = False
    mask: str | None = None
    mask_required: bool = False
    loss_mask: bool = False
    pad_value: float | bool = 0  # tokens / their mask: padding when CFG joins two lengths
    channels: int = 0  # kind "channels": how many input channels it adds
    zero_init: bool = True  # kind "channels": their input weights start at zero (STYLE 10)
    to_channels: Callable | None = None  # (x_in, value, mask value) -> (B, channels, T, H, W)
    # kind "channels": value -> (pixels (B, C, T, H, W) in [0, 1], regenerate (B, 1, T, H, W) bool):
    # pixels the value makes known, which pixel-space sampling keeps (RePaint) and the net draws around
    known_pixels: Callable | None = None
    pool: bool = False  # kind "tokens": also add the projected masked mean to the noise embedding
    embed: Callable[[int], nn.Module] | None = None  # kind "vector": width -> its embedding module
    features: Callable[[torch.Tensor], torch.Tensor] | None = None  # value -> module input
    per_frame: bool = False  # kind "vector": the module gives (B, T, D), one per frame
    module: str | None = None  # attribute on the network holding its module (state-dict keys)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"conditioning {self.name!r}: kind must be one of {KINDS}")
        if self.null not in NULLS:
            raise ValueError(f"conditioning {self.name!r}: null must be one of {NULLS}")
        if self.kind == "channels" and (self.channels < 1 or self.to_channels is None):
            raise ValueError(f"conditioning {self.name!r}: channels needs channels and to_channels")
        if self.kind == "vector" and (self.embed is None or self.module is None):
            raise ValueError(f"conditioning {self.name!r}: vector needs embed and module")
        if self.kind == "tokens" and self.pool and self.module is None:
            raise ValueError(f"conditioning {self.name!r}: pooled tokens need a module name")

    def describe(self) -> str:
        """The shape rule as errors print it, e.g. ``bool (B, L)`` or ``(B,)``."""
        dims = ", ".join(str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "")
        return ("bool " if self.dtype == torch.bool else "") + f"({dims})"


# --------------------------------------------------------------------------------------------------
# The built-in conditionings and the registry of added ones.


def mcvd_channels(x: torch.Tensor, frames: torch.Tensor | None, mask: torch.Tensor | None):
    """MCVD's known-frame channels ``[cond_frames * mask, mask]`` (Voleti et al. 2022): one net for
    text-to-video, image-to-video, continuation and interpolation. ``frames=None``: nothing known
    (zeros and an all-false mask)."""
    b, _, t, h, w = x.shape
    if frames is None:
        return torch.cat([torch.zeros_like(x), x.new_zeros(b, 1, t, h, w)], dim=1)
    m = mask.to(x.dtype)[:, None, :, None, None].expand(b, 1, t, h, w)
    return torch.cat([frames.to(x.dtype) * m, m], dim=1)


def _guidance_embedding(width: int) -> nn.Module:
    # Fourier features of w + MLP (Meng et al. 2023), last layer zero: a fresh student equals its
    # teacher's conditional model for every w.
    return TimestepEmbedding(256, width, zero_init=True)


def builtin_conditions(config) -> tuple[CondSpec, ...]:
    """Text, known frames and the guidance weight, as the config fields ``context_dim``,
    ``pooled_context``, ``frame_conditioning`` and ``guidance_embed`` enable them."""
    specs: list[CondSpec] = []
    if config.context_dim is not None:
        specs += [
            CondSpec(
                CONTEXT,
                "tokens",
                ("B", "L", config.context_dim),
                "context_dim",
                null="source",
                mask=CONTEXT_MASK,
                pool=bool(config.pooled_context),
                module="context_pool",
                doc="text tokens",
            ),
            CondSpec(
                CONTEXT_MASK,
                "mask",
                ("B", "L"),
                "context_dim",
                torch.bool,
                "source",
                pad_value=False,
            ),
        ]
    if config.frame_conditioning:
        specs += [
            CondSpec(
                COND_FRAMES,
                "channels",
                ("B", "C", "T", "H", "W"),
                "frame_conditioning",
                mask=FRAME_MASK,
                mask_required=True,
                channels=config.in_channels + 1,
                to_channels=mcvd_channels,
                zero_init=False,  # trained from scratch with the model, as MCVD
                doc="clean known frames",
            ),
            CondSpec(
                FRAME_MASK, "mask", ("B", "T"), "frame_conditioning", torch.bool, loss_mask=True
            ),
        ]
    if config.guidance_embed:
        specs.append(
            CondSpec(
                GUIDANCE,
                "vector",
                ("B",),
                "guidance_embed",
                required=True,
                embed=_guidance_embedding,
                features=lambda w: GUIDANCE_EMBED_SCALE * w,
                module="guidance_embed",
                doc="the CFG weight w (1 = conditional)",
            )
        )
    return tuple(specs)


# name -> factory(config) -> the specs that name adds; a network takes an added conditioning when
# its config lists the name in ``conditions`` (docs/architecture.md, "Adding a conditioning").
CONDITIONINGS: dict[str, Callable[[object], tuple[CondSpec, ...]]] = {}


def register_conditioning(name: str, factory: Callable[[object], tuple[CondSpec, ...]]) -> None:
    """Make ``name`` available to ``config.conditions`` (both architectures)."""
    CONDITIONINGS[name] = factory


# The temporal stride of a keyframe model (long video, Imagen Video's cascade): frame t of a clip
# is frame ``t * stride`` of the video, so one model learns keyframes at several spacings. A (B,)
# float, embedded on the noise-level scale (strides 1..16 -> 100..1600), zero-initialised.
STRIDE = "stride"
register_conditioning(
    STRIDE,
    lambda cfg: (
        CondSpec(
            STRIDE,
            "vector",
            ("B",),
            "conditions",
            required=True,
            embed=lambda width: TimestepEmbedding(256, width, zero_init=True),
            features=lambda s: s * 100.0,
            module="stride_embed",
            doc="keyframe stride: frames apart in the video per frame of the clip",
        ),
    ),
)


def network_conditions(config) -> tuple[CondSpec, ...]:
    """Everything a network built from ``config`` takes: the built-ins, then ``config.conditions``."""
    specs = list(builtin_conditions(config))
    for name in getattr(config, "conditions", ()):
        if name not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {name!r}; registered: {sorted(CONDITIONINGS)}")
        specs += CONDITIONINGS[name](config)
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"conditioning keys {dup} are declared twice")
    return tuple(specs)


# --------------------------------------------------------------------------------------------------
# Checking a call


def _check_shape(spec: CondSpec, value, x: torch.Tensor, bound: dict) -> torch.Tensor:
    if spec.kind == "vector" and spec.shape == ("B",):  # a number or (B,): float32 on x's device
        value = torch.as_tensor(value, dtype=torch.float32, device=x.device)
        value = value.expand(x.shape[0]) if value.ndim == 0 else value
    want = f"{spec.name} must be {spec.describe()}"
    if not torch.is_tensor(value):
        raise ValueError(f"{want}, got {type(value).__name__}")
    if (spec.dtype == torch.bool) != (value.dtype == torch.bool):
        raise ValueError(f"{want}, got {value.dtype} {tuple(value.shape)}")
    ok = value.ndim == len(spec.shape)
    local = dict(bound)
    for dim, rule in zip(value.shape, spec.shape if ok else ()):
        if isinstance(rule, int):
            ok = ok and dim == rule
        else:
            ok = ok and local.setdefault(rule, dim) == dim
    if not ok:
        sizes = ", ".join(f"{k}={v}" for k, v in bound.items() if k in spec.shape)
        raise ValueError(f"{want} with {sizes}, got {tuple(value.shape)}")
    bound.update(local)
    return value


def check_conditions(
    specs: Sequence[CondSpec], x: torch.Tensor, c_noise: torch.Tensor, cond: dict, in_channels: int
) -> tuple[torch.Tensor, dict]:
    """Validate a call ``net(x, c_noise, **cond)`` against the net's specs; returns ``c_noise`` as
    ``(B,)`` and ``cond`` without ``None`` values, ``(B,)`` vectors broadcast. Every error names the
    culprit: an unknown key names the accepted ones (and the config field a built-in needs)."""
    if x.ndim != 5:
        raise ValueError(f"x_in must be (B, C, T, H, W), got shape {tuple(x.shape)}")
    b, c = x.shape[:2]
    if c != in_channels:
        raise ValueError(f"x_in has {c} channels, the model expects in_channels={in_channels}")
    if c_noise.ndim == 0:
        c_noise = c_noise.expand(b)
    if c_noise.shape != (b,):
        raise ValueError(f"c_noise must be (B,) = ({b},), got {tuple(c_noise.shape)}")
    by_name = {s.name: s for s in specs}
    cond = {k: v for k, v in cond.items() if v is not None}
    for key in cond:
        if key not in by_name:
            raise ValueError(f"{_unknown(key)}; this model takes {sorted(by_name) or 'none'}")
    bound = dict(zip(X_SYMBOLS, x.shape))
    for spec in specs:
        if spec.name not in cond:
            if spec.required:
                raise ValueError(
                    f"this model has {spec.enabled_by}=True: pass {spec.name} {spec.describe()}, "
                    f"{spec.doc}"
                )
            continue
        if spec.mask is not None and spec.mask_required and spec.mask not in cond:
            raise ValueError(f"{spec.name} and {spec.mask} go together")
        cond[spec.name] = _check_shape(spec, cond[spec.name], x, bound)
    for spec in specs:  # a mask needs its owner
        owner = [s.name for s in specs if s.mask == spec.name]
        if spec.kind == "mask" and spec.name in cond and owner and owner[0] not in cond:
            raise ValueError(f"{spec.name} given without {owner[0]}")
    return c_noise, cond


# The config field that switches each built-in key on, for the error naming it.
_BUILTIN_FIELDS = {
    CONTEXT: "context_dim=None (unconditional)",
    CONTEXT_MASK: "context_dim=None (unconditional)",
    COND_FRAMES: "frame_conditioning=False",
    FRAME_MASK: "frame_conditioning=False",
    GUIDANCE: "guidance_embed=False",
}


def _unknown(key: str) -> str:
    if key in _BUILTIN_FIELDS:
        return f"{key} given but the model has {_BUILTIN_FIELDS[key]}"
    return f"unknown conditioning {key!r} (added ones are switched on by the config's conditions)"


def loss_mask(specs: Sequence[CondSpec], cond: dict) -> torch.Tensor | None:
    """The ``(B, T)`` known-frame mask the losses skip: the first ``loss_mask`` spec in ``cond``
    (the built-in ``frame_mask`` when the denoiser declares nothing, e.g. a closed-form one)."""
    if not specs:
        return cond.get(FRAME_MASK)
    for spec in specs:
        if spec.loss_mask and cond.get(spec.name) is not None:
            return cond[spec.name]
    return None


def null_conditioning(conditions: Sequence[CondSpec], cond: dict, source: dict) -> dict:
    """The unconditional half's cond for CFG, from the specs' null values: ``source`` (what the
    pipeline gives for "no prompt", e.g. the encoded empty prompt) for keys whose null is
    ``"source"`` and that ``cond`` holds; ``cfg_denoiser`` gives the other keys theirs (the same
    value, or zeros)."""
    names = {s.name for s in conditions if s.null == "source" and s.name in cond}
    return {k: v for k, v in source.items() if k in names}


def guidable(conditions: Sequence[CondSpec], cond: dict) -> bool:
    """Whether classifier-free guidance has anything to drop: a key of ``cond`` whose null value
    differs from it (not ``"keep"``). False for an unconditional model."""
    return any(s.null != "keep" and s.name in cond for s in conditions)


def conditions_of(denoiser) -> tuple[CondSpec, ...]:
    """The specs of the network under a denoiser (a preconditioning wrapper or a bare net); ``()``
    for anything else (a closure wrapper or a test double)."""
    net = getattr(denoiser, "net", denoiser)
    return tuple(getattr(net, "conditions", ()))


# --------------------------------------------------------------------------------------------------
# The shared embedding, used by every architecture


class ConditionedNet(nn.Module):
    """Base of vidiff's networks: declares ``conditions`` and turns a validated ``cond`` into the
    three things an architecture consumes -- extra input channels, the noise embedding (plus the
    ``vector`` conditionings) and the cross-attention tokens. (It also runs blocks under gradient
    checkpointing, the one other thing both architectures did alike.)

    The modules it builds (``time_embed``, then each spec's ``module`` in declaration order) are
    attributes of the network itself, so their state-dict keys are ``time_embed.*``,
    ``context_pool.*``, ``guidance_embed.*`` whichever architecture builds them.
    """

    conditions: tuple[CondSpec, ...] = ()

    def build_conditioning(self, config, width: int) -> None:
        """Declare ``network_conditions(config)`` and build the embeddings at ``width``."""
        self.conditions = network_conditions(config)
        # 256 sinusoid frequencies whatever the width (DiT's TimestepEmbedder): a narrow model
        # still resolves the 0..1000 noise scale finely
        self.time_embed = TimestepEmbedding(256, width)
        self.context_pool = self.guidance_embed = None  # a switched-off built-in reads as None
        for spec in self.conditions:
            if spec.kind == "tokens" and spec.shape[-1] != config.context_dim:
                # every cross-attention is built for context_dim
                raise ValueError(f"{spec.name} tokens must have context_dim={config.context_dim}")
            if spec.kind == "tokens" and spec.pool:
                setattr(self, spec.module, nn.Linear(spec.shape[-1], width))
            elif spec.kind == "vector":
                setattr(self, spec.module, spec.embed(width))

    @property
    def cond_channels(self) -> int:
        """Input channels the ``channels`` conditionings add to ``x_in``."""
        return sum(s.channels for s in self.conditions if s.kind == "channels")

    def zero_cond_channels(self, weight: torch.Tensor) -> None:
        """Zero the input weights of ``zero_init`` channel conditionings; ``weight`` is viewed as
        ``(..., input channels)`` in the order of :meth:`input_with_conditions`."""
        start, idx = self.config.in_channels, []
        for s in self.conditions:
            if s.kind == "channels":
                idx += range(start, start + s.channels) if s.zero_init else []
                start += s.channels
        with torch.no_grad():
            weight[..., idx] = 0

    # The parameter that reads the input channels, and its view as (..., input channels); set by
    # each network (a model grown by new conditionings pads it, vidiff/train/finetune.py).
    input_weight: str = ""

    def input_channels_view(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def channel_indices(self, names: Sequence[str]) -> list[int]:
        """Input channels (in the order of :meth:`input_with_conditions`) of the ``channels``
        conditionings named ``names``."""
        start, idx = self.config.in_channels, []
        for s in self.conditions:
            if s.kind == "channels":
                idx += range(start, start + s.channels) if s.name in names else []
                start += s.channels
        return idx

    def check_conditions(self, x, c_noise, cond: dict) -> tuple[torch.Tensor, dict]:
        """:func:`check_conditions` against this net's specs and ``config.in_channels``."""
        return check_conditions(self.conditions, x, c_noise, cond, self.config.in_channels)

    def input_with_conditions(self, x: torch.Tensor, cond: dict) -> torch.Tensor:
        """``[x_in, *channels conditionings]`` on dim 1 (each absent one as its zeros)."""
        extra = [
            s.to_channels(x, cond.get(s.name), cond.get(s.mask))
            for s in self.conditions
            if s.kind == "channels"
        ]
        return torch.cat([x, *extra], dim=1) if extra else x

    def _run(self, block: nn.Module, *args):
        """``block(*args)``, recomputed in the backward pass under ``config.gradient_checkpointing``
        while training (activation memory for compute)."""
        if self.config.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def embed_conditions(
        self, c_noise: torch.Tensor, cond: dict, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """``(emb (B, D), frame_emb (B, T, D) or None, tokens (B, L, D) or None, token mask)``.

        ``emb`` is the noise embedding plus pooled tokens and clip-wide vectors, in declaration
        order; ``frame_emb`` the sum of per-frame vectors; tokens (cast to ``dtype``) of several
        ``tokens`` specs are joined along L.
        """
        emb = self.time_embed(c_noise)
        frame_emb = None
        tokens: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for spec in self.conditions:
            value = cond.get(spec.name)
            if value is None or spec.kind in ("channels", "mask"):
                continue
            if spec.kind == "tokens":
                value, mask = value.to(dtype), cond.get(spec.mask)
                tokens.append((value, mask))
                if spec.pool:
                    emb = emb + getattr(self, spec.module)(masked_mean(value, mask))
                continue
            e = getattr(self, spec.module)(spec.features(value) if spec.features else value)
            if spec.per_frame:
                frame_emb = e if frame_emb is None else frame_emb + e
            else:
                emb = emb + e
        if not tokens:
            return emb, frame_emb, None, None
        if len(tokens) == 1:
            return emb, frame_emb, *tokens[0]
        masks = [
            m if m is not None else v.new_ones(v.shape[:2], dtype=torch.bool) for v, m in tokens
        ]
        return emb, frame_emb, torch.cat([v for v, _ in tokens], 1), torch.cat(masks, 1)

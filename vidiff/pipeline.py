"""VideoPipeline: the object that is trained, exported, loaded and sampled.

It bundles a :class:`~vidiff.config.PipelineConfig`, a text encoder, a network and its preconditioning
(which together form the denoiser ``D(x, sigma, **cond)``), and converts between the user's videos in
``[0, 1]`` and the model's ``[-1, 1]``. Training asks it for per-sample losses
(:meth:`training_loss`); generation composes denoiser wrappers (frame conditioning, classifier-free
guidance) around the same denoiser and hands them to a pure sampler.

An exported model is a folder with ``config.json`` and ``model.safetensors`` (EMA weights); no pickled
code is ever loaded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vidiff.config import PipelineConfig, load_pipeline_config, to_dict
from vidiff.diffusion import (
    VPSchedule,
    build_loss,
    build_precond,
    cfg_denoiser,
    frame_conditioned,
    random_frame_mask,
)
from vidiff.diffusion.editing import masked_denoiser
from vidiff.diffusion.losses import Reference
from vidiff.diffusion.precond import Denoiser
from vidiff.files import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    export_tensors,
    load_strict,
    model_folder,
    read_weights,
    write_model_folder,
)
from vidiff.models import build_model, build_model_from_config
from vidiff.models.text import build_text_encoder
from vidiff.nn.conditioning import (
    COND_FRAMES,
    FRAME_MASK,
    GUIDANCE,
    CondSpec,
    conditions_of,
    guidable,
    null_conditioning,
)
from vidiff.pipeline_edit import EditingMixin
from vidiff.registry import model_reference
from vidiff.sampling import SeededNoise, sample


class PipelineBase(nn.Module):
    """What the pipeline of every model family shares (:mod:`vidiff.families`): its ``config`` (a
    :class:`PipelineConfig`), the clip it makes (``num_frames`` x ``size`` x ``size``) and the device
    of its network ``net``."""

    config: PipelineConfig

    @property
    def net(self) -> nn.Module:
        raise NotImplementedError

    @property
    def num_frames(self) -> int:
        return self.config.video.num_frames

    @property
    def size(self) -> int:
        return self.config.video.size

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


class VideoPipeline(EditingMixin, PipelineBase):
    """Text encoder + network + preconditioning, with a video-in/video-out API in ``[0, 1]``."""

    def __init__(self, config: PipelineConfig):
        super().__init__()
        self.config = config
        mc, dc, video = config.model, config.diffusion, config.video
        self.text_encoder = (
            None
            if mc.text_encoder == "none"
            else build_text_encoder({"type": mc.text_encoder, **mc.text})
        )
        # Latent diffusion (LDM; Sora / WALT / Wan): a frozen causal VAE maps clips to latents and back.
        self.vae = _build_vae(mc)
        channels = self.vae.latent_channels if self.vae is not None else video.channels
        net_options = dict(mc.net)
        net_options.setdefault("in_channels", channels)
        net_options.setdefault("out_channels", channels)
        net_options["context_dim"] = (
            self.text_encoder.dim if self.text_encoder is not None else None
        )
        net_options["frame_conditioning"] = mc.frame_conditioning
        if mc.preset is None:  # a complete config (exports): no preset can change its meaning
            net = build_model_from_config(mc.arch, net_options)
        else:
            net = build_model(mc.arch, mc.preset, **net_options)
        self.schedule = VPSchedule(dc.schedule) if dc.parameterization in ("eps", "v") else None
        precond_options = {"schedule": self.schedule} if self.schedule is not None else {}
        # The network is registered once, inside its preconditioning (keys ``denoiser.net.*``).
        self.denoiser = build_precond(dc.parameterization, net, **precond_options)
        self.loss_fn = self._build_loss()
        # Training only: (pipe, captions) -> a loss reference or None (LoRA's output preservation).
        self.loss_reference: Callable[..., Reference | None] | None = None

    def _build_loss(self):
        """The training loss, sharing the preconditioning's schedule / sigma_data so the two can
        never disagree; ``diffusion.loss`` holds only the loss's own options (density, weighting)."""
        dc = self.config.diffusion
        if dc.parameterization in ("eps", "v"):
            mine = {"schedule": self.schedule}
        elif dc.parameterization == "edm":
            mine = {"sigma_data": self.denoiser.sigma_data}
        else:
            mine = {}
        clash = sorted(set(dc.loss) & (set(mine) | {"num_train_timesteps"}))
        if clash:
            raise ValueError(
                f"diffusion.loss.{clash[0]} is set by the model's preconditioning, not the loss; "
                "remove it from diffusion.loss"
            )
        return build_loss(dc.parameterization, **mine, **dc.loss)

    # ---------------------------------------------------------------------------------------------
    # shape and device

    @property
    def net(self) -> nn.Module:
        """The raw network (inside the preconditioning wrapper)."""
        return self.denoiser.net

    @property
    def conditions(self) -> tuple[CondSpec, ...]:
        """The conditionings the network declares (:mod:`vidiff.nn.conditioning`)."""
        return conditions_of(self.net)

    @property
    def guidance_embedded(self) -> bool:
        """Whether the network takes the guidance weight as an input (``guidance_embed``; guidance
        distillation, Meng et al. 2023): one forward pass per step instead of classifier-free
        guidance's two."""
        return any(s.name == GUIDANCE for s in self.conditions)

    @property
    def baked_cfg(self) -> float | None:
        """The guidance weight distilled into a student's weights (``diffusion.distilled.guidance ==
        "baked"``), else None: such a model takes no further classifier-free guidance."""
        d = self.config.diffusion.distilled or {}
        return float(d["cfg"]) if d.get("guidance") == "baked" else None

    # ---------------------------------------------------------------------------------------------
    # conditioning

    def encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Text conditioning for the denoiser; ``{}`` for an unconditional model."""
        if self.text_encoder is None:
            return {}
        context, mask = self.text_encoder.encode(list(prompts))
        return {"context": context, "context_mask": mask}

    def camera_conditions(
        self, camera: torch.Tensor, first_frames: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The cond of camera paths ``(B, T, 3)`` (:func:`vidiff.data.camera.camera_path`) for the
        camera conditionings this model takes: the path itself (``camera``) and, given the clips'
        first frames ``(B, 3, H, W)`` in ``[0, 1]``, the path per pixel (``camera_warp``: the
        first frames carried along it, :func:`vidiff.data.camera.warp_first_frame`)."""
        from vidiff.data.camera import warp_first_frame
        from vidiff.nn.control import CAMERA, CAMERA_WARP

        takes = {s.name for s in self.conditions}
        cond = {CAMERA: camera} if CAMERA in takes else {}
        if CAMERA_WARP in takes and first_frames is not None:
            cond[CAMERA_WARP] = warp_first_frame(first_frames.float().cpu(), camera.cpu())
        return cond

    def generate_camera(
        self,
        prompts: list[str],
        seeds: list[int],
        camera: torch.Tensor,
        first_frames: torch.Tensor | None = None,
        *,
        cond: dict[str, torch.Tensor] | None = None,
        **options,
    ) -> torch.Tensor:
        """:meth:`generate` under camera paths ``(B, T, 3)``, from ``first_frames`` ``(B, 3, H, W)``
        in ``[0, 1]`` when given (also frame 0's known frame on a frame-conditioned model). A model
        taking the camera per pixel with no first frames draws them first (a clip under the camera
        vector alone), then moves them. ``cond``: further conditionings; ``options`` go to
        :meth:`generate`."""
        from vidiff.nn.control import CAMERA_WARP

        cond = dict(cond or {})
        if first_frames is None and CAMERA_WARP in {s.name for s in self.conditions}:
            moves = {**cond, **self.camera_conditions(camera)}
            first_frames = self.generate(prompts, seeds, cond=moves, **options)[:, :, 0].cpu()
        known = mask = None
        if first_frames is not None and self.config.model.frame_conditioning:
            t, h, w = self.video_shape(options.get("num_frames"), options.get("size"))
            known = torch.zeros(len(prompts), self.config.video.channels, t, h, w)
            known[:, :, 0] = first_frames
            mask = torch.zeros(len(prompts), t, dtype=torch.bool)
            mask[:, 0] = True
        cond.update(self.camera_conditions(camera, first_frames))
        return self.generate(
            prompts, seeds, cond=cond, known_frames=known, frame_mask=mask, **options
        )

    def guided(
        self, cond: dict[str, torch.Tensor], cfg: float | torch.Tensor, batch: int
    ) -> tuple[Denoiser, dict[str, torch.Tensor]]:
        """The denoiser and ``cond`` for guidance weight ``cfg`` (a float or a (B,) tensor).

        A guidance-embedded net gets ``guidance = cfg`` as one more cond key (one forward pass);
        otherwise classifier-free guidance (Ho & Salimans 2022) against each conditioning's null
        value (the empty prompt for text), skipped when there is none to drop (an unconditional
        model) or ``cfg == 1``.
        """
        if self.guidance_embedded:
            w = torch.as_tensor(cfg, dtype=torch.float32, device=self.device).expand(batch)
            return self.denoiser, {**cond, GUIDANCE: w}
        # the null values the pipeline supplies ("source"): the empty prompt, as caption dropout
        if guidable(self.conditions, cond) and (torch.is_tensor(cfg) or cfg != 1.0):
            uncond = null_conditioning(self.conditions, cond, self.encode_prompts([""] * batch))
            return cfg_denoiser(self.denoiser, cfg, uncond, conditions=self.conditions), cond
        return self.denoiser, cond

    # ---------------------------------------------------------------------------------------------
    # training

    def training_loss(
        self,
        video: torch.Tensor,
        captions: list[str],
        seeds: list[int],
        encoded: bool = False,
        **extra,
    ) -> torch.Tensor:
        """Per-sample diffusion loss for a batch of clips ``(B, C, T, H, W)`` in ``[0, 1]`` (or, with
        ``encoded``, clips :meth:`to_model_space` already made: a latent cache); ``extra``: further
        conditionings of the batch by cond key (dataset fields named as the network's
        ``conditions``), passed to the denoiser as they are.

        Captions are dropped (replaced by the null prompt) with probability ``p_uncond`` so that one
        model learns both halves of classifier-free guidance; with frame conditioning, a random share of
        clips gets known frames (first frame, a prefix, or sparse keyframes) so that one model serves
        text-to-video, image-to-video, continuation and interpolation (MCVD, Voleti et al. 2022).

        Every random draw of sample ``i`` (caption dropout, frame mask, noise level, noise) comes from
        its own generator seeded with ``seeds[i]``: a sample's loss never depends on its batch, so
        data-parallel training equals single-process training and resume is exact.
        """
        if len(seeds) != video.shape[0]:
            raise ValueError(f"{len(seeds)} seeds for a batch of {video.shape[0]} clips")
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        x0 = video.to(self.device) if encoded else self.to_model_space(video)
        prompts, mask = self.draw_conditioning(captions, generators, x0.shape[2])
        cond = {**self.conditioning(x0, prompts, mask), **extra}
        if self.guidance_embedded:
            # Plain diffusion training of a guidance-embedded net teaches the conditional model (w=1).
            cond[GUIDANCE] = x0.new_ones(x0.shape[0])
        ref = self.loss_reference(self, captions) if self.loss_reference is not None else None
        return self.loss_fn.seeded(self.denoiser, x0, generators, ref, **cond)

    def to_model_space(self, video: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, H, W)`` in ``[0, 1]`` -> the clean ``x0`` the denoiser works on: pixels in
        ``[-1, 1]``, or with a VAE the scaled posterior means of the clips padded to ``1 + 4k``
        frames; the one place training and distillation make it."""
        x = video * 2 - 1
        if self.vae is None:
            return x
        with torch.no_grad():
            return self.vae.encode_latents(self.vae.pad_frames(x.to(self.device)))

    def from_model_space(self, x0: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """The inverse of :meth:`to_model_space` for generated samples: ``[0, 1]`` clips of
        ``num_frames`` (default ``video.num_frames``) frames."""
        if self.vae is not None:
            x0 = self.vae.decode_latents(x0, num_frames=num_frames or self.num_frames)
        return ((x0 + 1) / 2).clamp(0, 1).float()

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        """``(C, T, H, W)`` of what the denoiser works on: the video, or its latents."""
        return self.model_shape(*self.video_shape())

    def video_shape(
        self, num_frames: int | None = None, size: tuple[int, int] | None = None
    ) -> tuple[int, int, int]:
        """``(T, H, W)`` of the clips :meth:`generate` makes: the trained ones (``video.num_frames``,
        ``video.size`` square) unless given. Only a DiT samples other lengths and sizes (its patches
        and 3D RoPE or sincos positions take any grid); H and W must be whole patches (of latents,
        with a VAE). A ``ValueError`` names what does not fit."""
        v = self.config.video
        t = v.num_frames if num_frames is None else num_frames
        h, w = (v.size, v.size) if size is None else size
        if (t, h, w) == (v.num_frames, v.size, v.size):
            return t, h, w
        if min(t, h, w) < 1:
            raise ValueError(f"frames and size must be >= 1, got {t} frames of {h}x{w}")
        arch = self.config.model.arch
        if arch != "dit":
            raise ValueError(
                f"this {arch} model samples {v.num_frames} frames of {v.size}x{v.size} only "
                f"(other lengths and sizes need a DiT); got {t} frames of {h}x{w}"
            )
        s = self.vae.spatial_compression if self.vae is not None else 1
        _, ph, pw = self.net.config.patch_size
        if h % (s * ph) or w % (s * pw):
            raise ValueError(
                f"size {h}x{w}: height must be a multiple of {s * ph} and width of {s * pw} "
                f"(patch {ph}x{pw}" + (f" of latents {s}x smaller)" if s > 1 else ")")
            )
        return t, h, w

    def model_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(C, T, H, W)`` the denoiser works on for clips of ``(num_frames, height, width)``."""
        if self.vae is None:
            return (self.config.video.channels, num_frames, height, width)
        return self.vae.latent_shape(self.vae.padded_frames(num_frames), height, width)

    def _known_in_model_space(
        self, frames: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Known frames ``(B, C, T, H, W)`` in ``[0, 1]`` and their ``(B, T)`` mask in model space. With a
        VAE, latent frame 0 holds frame 0 alone and latent frame ``j`` frames ``tc (j-1) + 1 .. tc j``:
        a latent frame is known when all its frames are."""
        x = self.to_model_space(frames)
        if self.vae is None:
            return x, mask
        tc = self.vae.temporal_compression
        padded = self.vae.pad_frames(mask[:, None, :, None, None].float())[:, 0, :, 0, 0] > 0.5
        rest = padded[:, 1:].reshape(mask.shape[0], -1, tc).all(dim=2)
        return x, torch.cat([padded[:, :1], rest], dim=1)

    def draw_conditioning(
        self, captions: list[str], generators: list[torch.Generator], num_frames: int
    ) -> tuple[list[str], torch.Tensor | None]:
        """The first random draws of each training sample, from its own generator, in this order:
        caption dropout (``p_uncond``; a dropped caption becomes ``""``), then the frame mask
        (``(B, T)`` bool, None without frame conditioning or for images). Distillation
        (:mod:`vidiff.distill`) draws the same way, so its students keep serving every task."""
        dc = self.config.diffusion
        prompts = list(captions)
        if self.text_encoder is not None:
            drop = [torch.rand((), generator=g).item() < dc.p_uncond for g in generators]
            prompts = ["" if d else c for c, d in zip(captions, drop)]
        mask = None
        if self.config.model.frame_conditioning and num_frames > 1:
            p_none = 1.0 - dc.p_frame_cond
            mask = torch.cat(
                [random_frame_mask(1, num_frames, generator=g, p_none=p_none) for g in generators]
            )
        return prompts, mask

    def conditioning(
        self, x0: torch.Tensor, prompts: list[str], mask: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """The denoiser's cond for clean clips ``x0`` (model space): text, and known frames under
        ``mask``."""
        cond = self.encode_prompts(prompts)
        if mask is not None:
            cond[COND_FRAMES] = x0
            cond[FRAME_MASK] = mask.to(x0.device)
        return cond

    # ---------------------------------------------------------------------------------------------
    # sampling

    def sigmas(self, steps: int | None = None) -> torch.Tensor:
        """The preconditioning's default noise-level discretisation (``diffusion.sigmas`` options),
        ``steps`` long and ending in 0."""
        dc = self.config.diffusion
        steps = dc.steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return self.denoiser.default_sigmas(steps, **dc.sigmas)

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        seeds: list[int],
        *,
        steps: int | None = None,
        sampler: str | None = None,
        cfg: float | None = None,
        known_frames: torch.Tensor | None = None,
        frame_mask: torch.Tensor | None = None,
        noise_correlation: float | None = None,
        cond: dict[str, torch.Tensor] | None = None,
        batch_size: int = 16,
        callback=None,
        num_frames: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Sample one video per (prompt, seed): ``(B, C, T, H, W)`` in ``[0, 1]``.

        ``num_frames`` and ``size`` ``(H, W)`` default to the trained clip; a DiT takes others
        (:meth:`video_shape`).

        ``known_frames`` ``(B, C, T, H, W)`` in ``[0, 1]`` with ``frame_mask`` ``(B, T)`` bool condition on
        given frames (image-to-video: only frame 0 known; continuation: a prefix; interpolation:
        keyframes). ``noise_correlation`` (default ``diffusion.noise_correlation``) is the share of
        the initial noise common to all frames (:meth:`SeededNoise.video`). ``cond``: further
        conditionings by cond key, ``(B, ...)`` in the order of ``prompts`` (one of the network's
        ``conditions``; classifier-free guidance gives them their null value). Each video depends
        only on its own prompt and seed, not on its batch.
        """
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        shape = self.video_shape(num_frames, size)
        if known_frames is not None and tuple(known_frames.shape[2:]) != shape:
            raise ValueError(
                f"known_frames are {tuple(known_frames.shape[2:])} (T, H, W); the clips are {shape}"
            )
        if (known_frames is None) != (frame_mask is None):
            raise ValueError("known_frames and frame_mask go together")
        if known_frames is not None and not self.config.model.frame_conditioning:
            raise ValueError(
                "this model was trained without frame conditioning; it cannot take known frames"
            )
        dc = self.config.diffusion
        sampler = sampler or dc.sampler
        if self.baked_cfg is not None and cfg is not None and cfg != 1.0:
            raise ValueError(
                f"this distilled model has classifier-free guidance w={self.baked_cfg:g} baked into "
                f"its weights (diffusion.distilled.guidance='baked'); it takes no --cfg (got {cfg:g})"
            )
        cfg = dc.cfg if cfg is None else cfg
        rho = dc.noise_correlation if noise_correlation is None else noise_correlation
        out = []
        for start in range(0, len(prompts), batch_size):
            sl = slice(start, start + batch_size)
            kf = None if known_frames is None else known_frames[sl]
            fm = None if frame_mask is None else frame_mask[sl]
            extra = {k: v[sl].to(self.device) for k, v in (cond or {}).items()}
            out.append(
                self._generate_batch(
                    prompts[sl], seeds[sl], steps, sampler, cfg, rho, kf, fm, extra, callback, shape
                )
            )
        return torch.cat(out)

    def _generate_batch(
        self, prompts, seeds, steps, sampler, cfg, rho, known_frames, frame_mask, extra, callback,
        shape,
    ):  # fmt: skip
        device = self.device
        noise = SeededNoise(seeds, device=device)
        sigmas = self.sigmas(steps).to(device)
        eps = noise.video(self.model_shape(*shape), rho)
        x = eps * sigmas[0]
        cond = {**self.encode_prompts(prompts), **extra}
        denoiser, cond = self.guided(cond, cfg, len(prompts))
        for spec in self.conditions:  # pixels a conditioning makes known (the camera per pixel)
            if spec.known_pixels is not None and cond.get(spec.name) is not None:
                if self.vae is not None:
                    raise ValueError(f"{spec.name} keeps pixels; this model works on VAE latents")
                pixels, regenerate = spec.known_pixels(cond[spec.name])
                denoiser = masked_denoiser(denoiser, pixels * 2 - 1, regenerate, eps)
        if known_frames is not None:
            frames, mask = self._known_in_model_space(
                known_frames.to(device), frame_mask.to(device)
            )
            denoiser = frame_conditioned(denoiser, frames, mask)
        x0 = sample(
            denoiser, x, sigmas, sampler=sampler, extra_args=cond, callback=callback, noise=noise
        )
        return self.from_model_space(x0, num_frames=shape[0])

    # ---------------------------------------------------------------------------------------------
    # files

    def save(
        self,
        directory: str | Path,
        state_dict: dict[str, torch.Tensor] | None = None,
        dtype: torch.dtype | None = None,
    ) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (``state_dict`` defaults to this module's)."""
        state = state_dict if state_dict is not None else self.state_dict()
        config = to_dict(self.config)
        # Store the resolved network config with no preset (and the VAE's config, its weights being in
        # the file), so a saved model keeps its meaning when presets are edited or the VAE folder goes.
        config["model"]["preset"] = None
        config["model"]["net"] = json.loads(json.dumps(dataclasses.asdict(self.net.config)))
        if config["model"]["init"]:  # the model it was trained from: a shipped one by its name
            config["model"]["init"] = model_reference(config["model"]["init"])
        if self.vae is not None:
            config["model"]["vae"] = None
            config["model"]["vae_config"] = json.loads(
                json.dumps(dataclasses.asdict(self.vae.config))
            )
        tensors = export_tensors(state, dtype)
        return write_model_folder(directory, tensors, config, {"format": "pt", "vidiff": "1"})

    def load_weights(self, state: dict[str, torch.Tensor], source: str | Path) -> None:
        """Load a full state dict (strict); a mismatch is one error naming ``source``."""
        load_strict(self, state, source)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> VideoPipeline:
        """Load an exported model folder (``config.json`` + ``model.safetensors``)."""
        directory = model_folder(directory)
        pipe = cls(read_model_config(directory))
        state = read_weights(directory)
        reference = pipe.state_dict()
        state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
        pipe.load_weights(state, directory / WEIGHTS_NAME)
        return pipe.to(device).eval()


def read_model_config(directory: str | Path) -> PipelineConfig:
    """The :class:`PipelineConfig` of an exported model folder, with a Hugging Face text encoder
    shipped inside the folder (`vidiff inflate` copies it there: a relative ``name_or_path``) made
    absolute, so the model builds from any working directory."""
    directory = Path(directory)
    config = load_pipeline_config(directory / CONFIG_NAME)
    text = config.model.text
    relative = str(text.get("name_or_path", "/"))
    if config.model.text_encoder == "hf" and not Path(relative).is_absolute():
        inside = directory / relative
        text = {**text, "name_or_path": str(inside)} if inside.is_dir() else text
        config.model = dataclasses.replace(config.model, text=text)
    return config


def _build_vae(mc) -> nn.Module | None:
    """The frozen VAE of a latent pipeline: from ``vae_config`` (an export, weights follow in its
    state dict; a ``diffusers`` key marks Stable Diffusion's per-frame AutoencoderKL,
    :mod:`vidiff.models.sd_vae`) or from an exported VAE folder ``vae``; None for pixel-space models."""
    if mc.vae is None and mc.vae_config is None:
        return None
    if mc.vae_config is not None and "diffusers" in mc.vae_config:  # Stable Diffusion's image VAE
        from vidiff.models.sd_vae import SDVAE, SDVAEConfig

        return SDVAE(SDVAEConfig(**mc.vae_config)).requires_grad_(False).eval()
    from vidiff.models.vae import CausalVideoVAE, VAEConfig

    if mc.vae_config is not None:
        vae = CausalVideoVAE(VAEConfig(**{**mc.vae_config, "gan_weight": 0.0}))
    else:
        vae = CausalVideoVAE.load(mc.vae)
    return vae.requires_grad_(False).eval()

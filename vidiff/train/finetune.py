"""Fine-tuning: start a run from an exported model (``model.init``), train only part of it
(``train.trainable``).

Route B of video training (Make-A-Video, AnimateDiff, SVD): inflate a pretrained image model
(:mod:`vidiff.models.inflate`), then train only the new temporal layers. Everything else -- spatial
layers and text encoder -- gets ``requires_grad = False``, so the optimiser holds state for the
temporal layers alone and the EMA leaves the rest untouched: it stays bit-identical to the image model.

A run may also *grow* the model it starts from by new conditionings (ControlNet-style control added
to a trained model): ``model.net.conditions`` listing the stored ones plus new ones is the only model
key such a run sets. The new conditionings' parameters keep their zero-initialised start (extra input
channels of the first convolution get zero weights), so the grown model equals the stored one at
step 0. It is trained by the plain diffusion loss, so a distilled model's record
(``diffusion.distilled``: its step count, baked guidance) does not carry over, and the run's
sampling settings (``sampler``, ``steps``, ``cfg``) replace the stored ones.

A run may also refine ``model.init`` in a band of noise levels only (``train.keep_above_sigma``):
the diffusion loss of a sample drawn below that sigma regresses its clip as usual; above it, it
regresses model.init's own output at the same noisy input (a frozen copy), so the model keeps what
it does there -- a distilled student keeps its steps and baked guidance at high noise while its
low-noise steps, which draw edges and corners, learn from data again (:func:`keep_above`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vidiff.config import Config, DiffusionConfig, ModelConfig

TRAINABLE = ("all", "temporal", "lora")


def resolve_init(config: Config) -> Config:
    """``config`` with ``model`` and ``diffusion`` taken from ``model.init``'s ``config.json``
    (``diffusion`` keys the run sets differently from their defaults win); unchanged without init."""
    init = config.model.init
    if init is None:
        return config
    path = Path(init) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init {init} is not an exported vidiff model: no config.json"
        )
    stored = _stored_config(init)
    added = added_conditions(config, stored)
    grown = {"conditions": config.model.net["conditions"]} if added else {}
    if config.model != ModelConfig(init=init, net=grown):
        changed = [
            f.name
            for f in dataclasses.fields(ModelConfig)
            if getattr(config.model, f.name) != getattr(ModelConfig(init=init), f.name)
        ]
        raise ValueError(
            f"model.init gives the whole model; remove model.{', model.'.join(changed)} from the run"
        )
    default = DiffusionConfig()
    mine = {
        f.name: getattr(config.diffusion, f.name)
        for f in dataclasses.fields(DiffusionConfig)
        if getattr(config.diffusion, f.name) != getattr(default, f.name)
    }
    model = dataclasses.replace(stored.model, init=init)
    if added:
        model.net = {**model.net, "conditions": list(config.model.net["conditions"])}
        # a new model, trained by the plain loss: the run's sampling settings, not a student's
        for key in ("sampler", "steps", "cfg", "distilled"):
            mine.setdefault(key, getattr(config.diffusion, key))
    diffusion = dataclasses.replace(stored.diffusion, **mine)
    return dataclasses.replace(config, model=model, diffusion=diffusion)


def check_finetune(config: Config) -> None:
    """Up-front checks of a run's fine-tuning keys (a ValueError naming the key):
    ``train.trainable`` / ``train.lora`` (:func:`vidiff.adapters.check_lora_run`) and
    ``train.keep_above_sigma``, which keeps a diffusion model.init's output with the run's one loss
    reference (so not beside LoRA's output preservation)."""
    from vidiff.adapters import check_lora_run, from_options

    check_lora_run(config)
    tc = config.train
    if tc.keep_above_sigma is None:
        return
    if tc.keep_above_sigma <= 0:
        raise ValueError(f"train.keep_above_sigma must be > 0, got {tc.keep_above_sigma}")
    if config.model.init is None:
        raise ValueError(
            "train.keep_above_sigma keeps model.init's output above that noise level: "
            "set model.init"
        )
    if tc.trainable == "lora" and from_options(tc.lora).preserve:
        raise ValueError("train.keep_above_sigma and train.lora.preserve cannot be combined")


def keep_above(reference: nn.Module, sigma_max: float) -> Callable:
    """The loss reference (``VideoPipeline.loss_reference``) of ``train.keep_above_sigma``: a sample
    whose noise level exceeds ``sigma_max`` regresses ``reference``'s output (model.init, frozen) at
    the same noisy input and conditioning instead of its clip.

    ``reference`` is not a submodule of the objective (it is neither trained, checkpointed nor
    averaged); it follows the batch to its device at the first call."""
    reference.eval().requires_grad_(False)

    def loss_reference(pipe: nn.Module, captions: list[str]) -> Callable:
        def target(x: torch.Tensor, sigma: torch.Tensor, x0: torch.Tensor, cond: dict):
            high = sigma > sigma_max
            if not high.any():
                return x0
            if next(reference.parameters()).device != x.device:
                reference.to(x.device)
            with torch.no_grad():
                kept = reference.denoiser(x, sigma, **cond)
            return torch.where(high.view(-1, *[1] * (x.ndim - 1)), kept, x0)

        return target

    return loss_reference


def _stored_config(init: str | Path) -> Config:
    from vidiff.pipeline import read_model_config

    return read_model_config(init)


def added_conditions(config: Config, stored: Config) -> list[str]:
    """The conditionings a ``model.init`` run adds to the stored model (``model.net.conditions``
    must list the stored ones too); [] when it sets none."""
    if "conditions" not in config.model.net:
        return []
    wanted = list(config.model.net["conditions"] or [])
    have = list(stored.model.net.get("conditions") or [])
    missing = [c for c in have if c not in wanted]
    if missing:
        raise ValueError(
            f"model.net.conditions {wanted} drops {missing} of model.init's model: a run may add "
            "conditionings to it, not remove them"
        )
    return [c for c in wanted if c not in have]


def init_weights(objective: nn.Module, init: str, config: Config | None = None) -> None:
    """Load ``init``'s ``model.safetensors`` into the objective built from its config (strict); for a
    run that grows the model by new conditionings (``config``), their parameters keep their fresh,
    zero-initialised values and the first convolution's new input channels get zero weights."""
    from safetensors.torch import load_file

    from vidiff.files import WEIGHTS_NAME, load_strict

    path = Path(init) / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init {init} is not an exported vidiff model: no {WEIGHTS_NAME}"
        )
    state = load_file(str(path))
    reference = objective.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    added = added_conditions(config, _stored_config(init)) if config is not None else []
    if added:
        state = _grown_state(objective, state, added)
    load_strict(objective, state, path)


def _grown_state(objective: nn.Module, state: dict, added: list[str]) -> dict:
    """``state`` (the stored model's) completed to the grown ``objective``: its new parameters as
    initialised, the network's input weight with zero weights for the added channel conditionings."""
    reference = objective.state_dict()
    grown = {**{k: v for k, v in reference.items() if k not in state}, **state}
    for prefix, net in _networks(objective):
        key = prefix + net.input_weight
        if key not in state or state[key].shape == reference[key].shape:
            continue
        weight = reference[key].clone()
        view = net.input_channels_view(weight)
        new = set(net.channel_indices(added))
        kept = [i for i in range(view.shape[-1]) if i not in new]
        stored = net.input_channels_view(state[key])
        if stored.shape[-1] != len(kept):
            continue  # left as stored: load_strict names the mismatch
        view[..., kept] = stored.to(view.dtype)
        grown[key] = weight
    return grown


def _networks(objective: nn.Module):
    from vidiff.nn.conditioning import ConditionedNet

    for name, module in objective.named_modules():
        if isinstance(module, ConditionedNet):
            yield (name + "." if name else ""), module


def trainable_names(objective: nn.Module, spec: str | list[str], arch: str) -> list[str]:
    """Names of the parameters ``spec`` trains (see :class:`~vidiff.config.TrainConfig`)."""
    names = [n for n, _ in objective.named_parameters()]
    if spec == "all":
        return names
    if spec == "temporal":
        from vidiff.models.inflate import is_temporal

        chosen = [n for n in names if is_temporal(arch, n)]
        if not chosen:
            raise ValueError(f"train.trainable=temporal: this {arch} model has no temporal layers")
        return chosen
    if spec == "lora":  # the adapter vidiff.adapters.add_lora_for_run put on the network
        chosen = [n for n in names if ".lora_" in n or n.endswith("new_tok_emb")]  # + new words
        if not chosen:
            raise ValueError("train.trainable=lora: the model carries no LoRA adapter")
        return chosen
    patterns = [spec] if isinstance(spec, str) else list(spec)
    chosen = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(
                f"train.trainable pattern {pattern!r} matches no parameter (names look like "
                f"{names[0]!r}); or use one of {TRAINABLE}"
            )
        chosen += [n for n in hits if n not in chosen]
    return chosen


def set_trainable(objective: nn.Module, spec: str | list[str], arch: str) -> int:
    """Freeze every parameter ``spec`` does not train; returns how many stay trainable."""
    if spec == "all":
        return sum(p.requires_grad for p in objective.parameters())
    keep = set(trainable_names(objective, spec, arch))
    for name, p in objective.named_parameters():
        if name not in keep:
            p.requires_grad_(False)
    n = sum(p.requires_grad for p in objective.parameters())
    if n == 0:
        raise ValueError(f"train.trainable={spec!r} leaves no trainable parameter")
    return n


__all__ = [
    "added_conditions",
    "check_finetune",
    "init_weights",
    "keep_above",
    "resolve_init",
    "set_trainable",
    "trainable_names",
]

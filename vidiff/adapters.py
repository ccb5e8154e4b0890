"""LoRA adapters on a diffusion pipeline's network, through peft.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models") adds to a frozen layer
``W`` a rank-``r`` update ``(alpha / r) B A``, with ``B`` zero at the start, so an adapted model equals
its base until it trains; only ``A`` and ``B`` are trained and saved. Here the update sits on the
network's attention projections (spatial, temporal and cross attention: what Tune-A-Video tunes) and
on its temporal layers (the temporal convolutions of the U-Net), chosen by module name
(:func:`default_targets`), or on any module-name pattern the run gives (``train.lora.targets``).

Layers are wrapped by peft's ``inject_adapter_in_model`` (the base weights move to
``<layer>.base_layer``); the adapter is written in peft's layout -- ``adapter_config.json`` (a
``LoraConfig``) and ``adapter_model.safetensors`` (``get_peft_model_state_dict``) -- plus
:data:`ADAPTER_META`, which names the base model and its network config so that an adapter is never
applied to a model it does not fit. The base model's files are never rewritten (adapters, not forks).

A new concept may need a new word (a colour the model never saw): ``train.lora.new_words`` adds words
to the built-in text encoder's vocabulary, each starting from an existing word's embedding, and trains
their rows with the adapter -- pivotal tuning (textual inversion, Gal et al. 2022, trained jointly
with LoRA, as DreamBooth-LoRA trainers do). Their rows travel in :data:`NEW_WORDS_WEIGHTS`.

Prior clips (captions without a new word) keep the old prompts as they were. By default they are
trained like any clip (DreamBooth's prior preservation); with ``train.lora.preserve`` they regress
the base model's own output instead (:func:`output_preservation`: self-distillation, as Learning
without Forgetting, Li & Hoiem 2016), which also holds for a distilled base, whose outputs are not
the clips' plain diffusion targets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidiff.registry import model_reference

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_META = "vidiff_adapter.json"
NEW_WORDS_WEIGHTS = "new_words.safetensors"
# A one-shot tuned adapter (vidiff tune) keeps the clip it learnt: sampling starts from it.
SOURCE_VIDEO = "source.safetensors"
SOURCE_STRUCTURE = 0.5  # the share of the steps that keep the clip's layout (structure guidance)
# Layers peft can wrap with LoRA (by type name, so that peft is imported only when adapters are used).
_WRAPPABLE = ("Linear", "Conv1d", "Conv2d", "Conv3d")
_ATTENTION = re.compile(r"attn|attention")
_TEMPORAL = re.compile(r"^(temporal|motion)")
_FEED_FORWARD = {"ff", "mlp", "feed_forward"}


@dataclasses.dataclass
class LoraOptions:
    """The adapter a ``train.trainable: lora`` run trains (``train.lora``)."""

    rank: int = 8
    alpha: float | None = None  # the update's scale is alpha / rank; None: alpha = rank
    # A regular expression that module names (of the network, e.g. ``down.4.attn.cross.q``) must
    # match in full; None: :func:`default_targets`.
    targets: str | None = None
    # New words for the built-in text encoder, each starting from a known word's embedding:
    # {purple: blue}. Their rows train with the adapter.
    new_words: dict[str, str] = dataclasses.field(default_factory=dict)
    # Prior clips (captions with no new word) regress the base model's output, not the clip
    # (:func:`output_preservation`); needs new_words.
    preserve: bool = False


def require_peft() -> None:
    """A ValueError saying how to install peft when it is missing (LoRA is an optional extra)."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise ValueError(
            "LoRA adapters need peft: pip install 'vidiff[lora]' (or pip install peft)"
        )


def default_targets(net: nn.Module) -> list[str]:
    """Names of ``net``'s linear/conv layers inside attention (not its feed-forward part) or inside
    a temporal layer: the layers a LoRA run adapts unless told otherwise."""
    names = []
    for name, module in net.named_modules():
        if type(module).__name__ not in _WRAPPABLE or not isinstance(module, nn.Module):
            continue
        parts = name.split(".")
        temporal = any(_TEMPORAL.match(p) for p in parts)
        attention = any(_ATTENTION.search(p) for p in parts) and not _FEED_FORWARD & set(parts)
        if temporal or attention:
            names.append(name)
    return names


def _pattern(names: list[str]) -> str:
    """A regular expression matching exactly ``names`` (peft full-matches module names with it)."""
    return "(" + "|".join(re.escape(n) for n in names) + ")"


def lora_config(net: nn.Module, options: LoraOptions) -> Any:
    """peft's ``LoraConfig`` for ``net``; a ValueError when no layer is a target."""
    require_peft()
    from peft import LoraConfig

    if options.rank < 1:
        raise ValueError(f"train.lora.rank must be >= 1, got {options.rank}")
    if options.targets is None:
        names = default_targets(net)
    else:
        try:
            rx = re.compile(options.targets)
        except re.error as e:
            raise ValueError(f"train.lora.targets {options.targets!r}: {e}") from None
        names = [
            n for n, m in net.named_modules() if type(m).__name__ in _WRAPPABLE and rx.fullmatch(n)
        ]
    if not names:
        what = "attention or temporal" if options.targets is None else repr(options.targets)
        raise ValueError(f"LoRA: this {type(net).__name__} has no {what} layer to adapt")
    return LoraConfig(
        r=options.rank,
        lora_alpha=options.alpha if options.alpha is not None else options.rank,
        target_modules=_pattern(names),
        lora_dropout=0.0,
        init_lora_weights=True,  # A random, B = 0: the adapted model starts equal to its base
    )


def has_lora(pipe: nn.Module) -> bool:
    """Whether ``pipe``'s network carries LoRA layers."""
    return any(".lora_A." in n for n, _ in pipe.named_parameters())


def add_lora(pipe: nn.Module, config: Any) -> int:
    """Wrap ``pipe.net``'s target layers with a fresh adapter (``config``: a peft ``LoraConfig``) and
    freeze everything else in ``pipe`` (text encoder included). Returns the number of adapter
    parameters (tensors) left trainable."""
    from peft import inject_adapter_in_model

    if not hasattr(pipe, "net"):
        raise ValueError(
            f"LoRA adapts a diffusion pipeline's network; {type(pipe).__name__} has none"
        )
    if has_lora(pipe):
        raise ValueError("this model already carries a LoRA adapter")
    pipe.requires_grad_(False)
    inject_adapter_in_model(config, pipe.net)
    trainable = [p for n, p in pipe.named_parameters() if ".lora_" in n]
    for p in trainable:
        p.requires_grad_(True)
    return len(trainable)


def check_lora_run(config: Any) -> None:
    """Up-front checks of a run's ``train.trainable`` / ``train.lora`` (a ValueError naming the key):
    an adapter needs a base model (``model.init``), and ``train.lora`` needs ``trainable: lora``."""
    tc = config.train
    if tc.trainable != "lora":
        if tc.lora:
            raise ValueError("train.lora is set but train.trainable is not lora")
        return
    options = from_options(tc.lora)
    if options.rank < 1:
        raise ValueError(f"train.lora.rank must be >= 1, got {options.rank}")
    if options.preserve and not options.new_words:
        raise ValueError(
            "train.lora.preserve tells prior clips by their captions having no new word: "
            "set train.lora.new_words"
        )
    if config.model.init is None:
        raise ValueError(
            "train.trainable=lora adapts an exported model: set model.init to its folder"
        )


def add_lora_for_run(objective: nn.Module, config: Any) -> None:
    """Give a run's objective its adapter when ``train.trainable`` is ``lora`` (no-op otherwise):
    after the base weights loaded, before a checkpoint's state (which holds the adapter) is."""
    if config.train.trainable != "lora":
        return
    options = from_options(config.train.lora)
    add_lora(objective, lora_config(objective.net, options))
    if options.new_words:
        add_new_words(objective, options.new_words)
    if options.preserve:
        objective.loss_reference = output_preservation(options.new_words)


def output_preservation(new_words: Iterable[str]) -> Callable:
    """The loss reference (``VideoPipeline.loss_reference``) of LoRA training with output
    preservation: a clip whose caption holds none of ``new_words`` (a prior clip) is regressed onto
    the base model's output -- the same network with its adapter at scale 0, at the same noisy
    input and conditioning -- instead of onto the clip. The adapter learns the new concept from the
    new clips and, from the prior clips, to leave the old prompts as the base draws them."""
    words = frozenset(w.lower() for w in new_words)

    def reference(pipe: nn.Module, captions: list[str]) -> Callable | None:
        prior = torch.tensor([not words & set(re.findall(r"\w+", c.lower())) for c in captions])
        if not prior.any():
            return None

        def target(x: torch.Tensor, sigma: torch.Tensor, x0: torch.Tensor, cond: dict):
            with torch.no_grad(), adapters_off(pipe):
                base = pipe.denoiser(x, sigma, **cond)
            return torch.where(prior.to(x.device).view(-1, *[1] * (x.ndim - 1)), base, x0)

        return target

    return reference


@contextlib.contextmanager
def adapters_off(pipe: nn.Module) -> Iterator[None]:
    """Within the block, ``pipe`` computes as its base model (every LoRA update at scale 0)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in pipe.modules() if isinstance(m, LoraLayer)]
    saved = [dict(m.scaling) for m in layers]
    try:
        for m in layers:
            m.scaling.update(dict.fromkeys(m.scaling, 0.0))
        yield
    finally:
        for m, scaling in zip(layers, saved):
            m.scaling.update(scaling)


def add_new_words(pipe: nn.Module, new_words: dict[str, str]) -> None:
    """Add ``{new word: known word}`` to ``pipe``'s built-in text encoder, each new row a copy of
    its known word's (trainable); a ValueError naming the word or the encoder that cannot take it."""
    from vidiff.models.text import TextEncoder

    encoder = getattr(pipe, "text_encoder", None)
    if not isinstance(encoder, TextEncoder):
        raise ValueError(
            "train.lora.new_words adds words to vidiff's built-in text encoder; this model has "
            f"{type(encoder).__name__}"
        )
    stoi = encoder.tokenizer.stoi
    unknown = [w for w in new_words.values() if w not in stoi]
    if unknown:
        raise ValueError(
            f"train.lora.new_words: {unknown[0]!r} (a new word's starting point) is not in the "
            f"vocabulary: {' '.join(encoder.tokenizer.vocab)}"
        )
    for word in new_words:
        if not re.fullmatch(r"[a-z]+", word):
            raise ValueError(f"train.lora.new_words: {word!r} is not one lower-case word")
    weight = encoder.tok_emb.weight
    rows = torch.stack([weight[stoi[w]] for w in new_words.values()])
    encoder.add_words(list(new_words), rows)


def from_options(raw: dict) -> LoraOptions:
    """:class:`LoraOptions` from ``train.lora`` (a dict); unknown keys are an error naming them."""
    from vidiff.config import check_fields, from_dict

    check_fields(raw, LoraOptions, "train.lora", prefix="train.lora.")
    return from_dict(LoraOptions, raw)


def set_lora_scale(pipe: nn.Module, scale: float) -> None:
    """Multiply every LoRA update of ``pipe`` by ``scale`` (1: as trained, 0: the base model)."""
    from peft.tuners.lora import LoraLayer

    for module in pipe.modules():
        if isinstance(module, LoraLayer):
            for name in module.active_adapters:
                module.set_scale(name, scale)


def save_adapter(
    pipe: nn.Module,
    directory: str | Path,
    base: str | Path,
    source: tuple[torch.Tensor, str] | None = None,
) -> Path:
    """Write ``pipe``'s adapter as a folder in peft's layout plus :data:`ADAPTER_META` naming
    ``base`` (the model folder it was trained on) and that model's network config. ``source``:
    the ``(clip (C, T, H, W) in [0, 1], caption)`` a one-shot adapter was tuned on, kept in the
    folder: generation with it starts from the clip, as Tune-A-Video samples from its inversion."""
    from peft import get_peft_model_state_dict

    from vidiff.files import save_safetensors

    if not has_lora(pipe):
        raise ValueError("this model carries no LoRA adapter to save")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = pipe.net.peft_config["default"]
    config.base_model_name_or_path = model_reference(base)
    config.save_pretrained(str(directory))
    # save_embedding_layers=False: peft would otherwise look the base model up (online) to see
    # whether its vocabulary grew; vidiff adapters never touch the text encoder.
    state = get_peft_model_state_dict(pipe.net, save_embedding_layers=False)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    save_safetensors(tensors, directory / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    meta = {"base_model": model_reference(base), **_fingerprint(pipe)}
    encoder = getattr(pipe, "text_encoder", None)
    if getattr(encoder, "new_tok_emb", None) is not None:
        meta["new_words"] = encoder.new_words
        rows = {"rows": encoder.new_tok_emb.detach().float().cpu().contiguous().clone()}
        save_safetensors(rows, directory / NEW_WORDS_WEIGHTS, metadata={"format": "pt"})
    if source is not None:
        clip, caption = source
        save_safetensors(
            {"video": clip.detach().float().cpu().contiguous()}, directory / SOURCE_VIDEO
        )
        meta["source"] = {"caption": caption, "structure": SOURCE_STRUCTURE}
    (directory / ADAPTER_META).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_adapted(directory: str | Path, device: Any = "cpu", scale: float = 1.0) -> nn.Module:
    """The base model an adapter folder names, with the adapter applied at ``scale``."""
    from vidiff.pipeline import VideoPipeline
    from vidiff.registry import resolve_model

    base = resolve_model(adapter_base(directory), f"the base model of LoRA adapter {directory}")
    return load_adapter(VideoPipeline.load(base), directory, scale).to(device)


def is_adapter(directory: str | Path) -> bool:
    """Whether ``directory`` is an adapter folder (what :func:`save_adapter` writes)."""
    return (Path(directory) / ADAPTER_META).is_file()


def adapter_base(directory: str | Path) -> str:
    """The base model an adapter folder names (as written at export)."""
    return str(_read_meta(Path(directory))["base_model"])


def load_adapter(pipe: nn.Module, directory: str | Path, scale: float = 1.0) -> nn.Module:
    """Apply the adapter folder ``directory`` to ``pipe`` (in place) at ``scale``; a ValueError
    naming the folder when it was trained on another network, or a FileNotFoundError naming the
    missing file. Returns ``pipe`` (its weights frozen: an adapted pipeline is for sampling)."""
    require_peft()
    from peft import LoraConfig, set_peft_model_state_dict

    from vidiff.files import check_finite, load_safetensors

    directory = Path(directory)
    meta = _read_meta(directory)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory} is not a LoRA adapter folder: missing {name}")
    mine = _fingerprint(pipe)
    if {k: meta.get(k) for k in mine} != mine:
        raise ValueError(
            f"LoRA adapter {directory} was trained on another network ({meta.get('arch')} model "
            f"{meta.get('base_model')}); it does not fit this {mine['arch']} model"
        )
    config = LoraConfig.from_pretrained(str(directory))
    state = load_safetensors(directory / ADAPTER_WEIGHTS)
    check_finite(state, directory / ADAPTER_WEIGHTS)
    device = next(pipe.parameters()).device
    add_lora(pipe, config)
    result = set_peft_model_state_dict(pipe.net, state)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in getattr(result, "missing_keys", []) or [] if ".lora_" in k]
    if unexpected or missing:
        key = (unexpected or missing)[0]
        raise ValueError(f"LoRA adapter {directory} does not fit this model (key {key!r})")
    words = meta.get("new_words") or []
    if words:
        if not (directory / NEW_WORDS_WEIGHTS).is_file():
            raise FileNotFoundError(
                f"LoRA adapter {directory} names new words but has no {NEW_WORDS_WEIGHTS}"
            )
        rows = load_safetensors(directory / NEW_WORDS_WEIGHTS)["rows"]
        check_finite({"rows": rows}, directory / NEW_WORDS_WEIGHTS)
        try:
            pipe.text_encoder.add_words(words, rows)
        except (AttributeError, ValueError) as e:
            raise ValueError(
                f"LoRA adapter {directory}: its new words {words} do not fit: {e}"
            ) from None
    set_lora_scale(pipe, scale)
    return pipe.requires_grad_(False).to(device).eval()


def tuned_source(directory: str | Path) -> tuple[torch.Tensor, float] | None:
    """``(clip (C, T, H, W), structure)`` of a one-shot adapter folder; None for other adapters."""
    from vidiff.files import check_finite, load_safetensors

    directory = Path(directory)
    source = _read_meta(directory).get("source")
    if not source:
        return None
    if not (directory / SOURCE_VIDEO).is_file():
        raise FileNotFoundError(
            f"LoRA adapter {directory} names a source clip but has no {SOURCE_VIDEO}"
        )
    video = load_safetensors(directory / SOURCE_VIDEO)["video"]
    check_finite({"video": video}, directory / SOURCE_VIDEO)
    return video, float(source.get("structure", SOURCE_STRUCTURE))


def _fingerprint(pipe: nn.Module) -> dict[str, Any]:
    """What an adapter must agree on with the model it is applied to: architecture and network."""
    net = pipe.config.model.net if pipe.config.model.preset is None else None
    net = dataclasses.asdict(pipe.net.config) if hasattr(pipe.net, "config") else net
    net = {k: v for k, v in json.loads(json.dumps(net)).items() if k != "gradient_checkpointing"}
    return {"arch": pipe.config.model.arch, "net": net}


def _read_meta(directory: Path) -> dict[str, Any]:
    from vidiff.files import read_json

    if not directory.is_dir():
        raise FileNotFoundError(f"LoRA adapter folder {directory} does not exist")
    if not (directory / ADAPTER_META).is_file():
        raise FileNotFoundError(f"{directory} is not a vidiff LoRA adapter: missing {ADAPTER_META}")
    meta = read_json(directory / ADAPTER_META)
    if not isinstance(meta, dict) or "base_model" not in meta:
        raise ValueError(f"{directory / ADAPTER_META} names no base_model")
    return meta


__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_META",
    "ADAPTER_WEIGHTS",
    "NEW_WORDS_WEIGHTS",
    "SOURCE_VIDEO",
    "tuned_source",
    "LoraOptions",
    "add_new_words",
    "add_lora",
    "add_lora_for_run",
    "check_lora_run",
    "adapter_base",
    "load_adapted",
    "default_targets",
    "from_options",
    "has_lora",
    "is_adapter",
    "load_adapter",
    "require_peft",
    "lora_config",
    "save_adapter",
    "set_lora_scale",
]

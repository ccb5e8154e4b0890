"""``vidiff train`` and ``vidiff export``: thin command wrappers around the trainer and checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from vidiff.commands import checks
from vidiff.config import Config, from_dict, load_config
from vidiff.errors import UserError
from vidiff.registry import resolve_model
from vidiff.train.checkpoint import load_state, resolve_checkpoint

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def train(config: str, *overrides: str, resume: bool = False, allow_changes: bool = False) -> None:
    """Train a model from a YAML config plus dotted overrides (``train.steps=2000``).

    Example: ``vidiff train configs/shapes-unet-tiny.yaml train.steps=2000``. The run directory
    (``train.out_dir``) receives the resolved ``config.yaml``, ``metrics.jsonl``, sample sheets and
    checkpoints; ``--resume`` continues from its newest readable checkpoint (``--allow-changes``:
    even with another batch size, gradient accumulation or process count, then not bit-exactly).
    Several processes (GPUs, or CPU with gloo): ``accelerate launch --multi_gpu --num_processes N -m vidiff.cli train CONFIG`` or
    ``torchrun --nproc_per_node N -m vidiff.cli train CONFIG``; ``train.batch_size`` is the global
    batch, so the result does not depend on N.

    Args:
        config: a run config YAML (configs/*.yaml).
        overrides: dotted overrides of the config, e.g. train.steps=2000 data.size=32.
        resume: continue from the newest readable checkpoint in train.out_dir.
        allow_changes: with --resume, accept another global batch size, gradient accumulation or
            process count (the run is then not bit-exact).
    """
    import yaml

    from vidiff.train.loop import train as train_loop

    try:
        cfg = load_config(config, overrides)
    except yaml.YAMLError as e:  # an override's value (the file's own errors name the file)
        raise UserError(f"an override is not valid YAML: {getattr(e, 'problem', e)}") from None
    # train_loop first finds the models the config names (model.vae: vae-shapes), or names them as
    # missing, before any work.
    result = train_loop(cfg, resume=resume, allow_changes=allow_changes)
    if result.finished and result.checkpoint is not None:
        from accelerate import PartialState

        if PartialState().is_main_process:
            print(f"vidiff: step {result.step} checkpoint: {result.checkpoint}")
            print(
                f"vidiff: export it with: vidiff export {cfg.train.out_dir} -o {Path(cfg.train.out_dir) / 'model'}"
            )


def export(
    checkpoint: str,
    *,
    out: str = "model",
    dtype: str = "float32",
    steps: int | None = None,
    sampler: str | None = None,
    cfg: float | None = None,
    noise_correlation: float | None = None,
) -> None:
    """Export the EMA weights of a training checkpoint as a model folder that ``vidiff sample`` loads
    (for ``model.arch: vae`` / ``vqvae``, a folder that ``CausalVideoVAE.load`` / ``VQVAE.load``
    reads).

    CHECKPOINT is a run directory (its newest checkpoint is used), a checkpoint directory, or an
    exported model folder (re-exported, e.g. a distilled student at float16). The folder gets
    ``config.json`` + ``model.safetensors`` (``--dtype float16`` halves its size); a
    ``train.trainable: lora`` run gets the adapter alone (``adapter_config.json`` +
    ``adapter_model.safetensors``, peft's layout, and ``vidiff_adapter.json`` naming the base model),
    which ``vidiff generate --lora DIR`` (or ``--model DIR``) applies. ``--steps``,
    ``--sampler``, ``--cfg`` and ``--noise-correlation`` (the share of the starting noise common to
    all frames) set the exported model's sampling defaults (else the training config's).

    Args:
        checkpoint: a run folder (its newest checkpoint), a checkpoint folder, an exported model or
            a shipped model's name.
        out: the model folder to write.
        dtype: weight precision: float32, float16 or bfloat16.
        steps: the model's default sampling steps (default: the training config's).
        sampler: the model's default sampler (default: the training config's).
        cfg: the model's default classifier-free guidance weight (default: the training config's).
        noise_correlation: the model's default share of starting noise common to all frames, in
            [0, 1) (default: the training config's).
    """
    from vidiff.families import family_of, load_model

    checks.folder("--out", out)
    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if steps is not None and steps < 1:
        raise UserError(f"--steps must be >= 1, got {steps}")
    if sampler is not None:
        from vidiff.sampling import SAMPLERS

        if sampler not in SAMPLERS:
            raise UserError(f"unknown --sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    if cfg is not None and cfg < 0:
        raise UserError(f"--cfg must be >= 0, got {cfg}")
    if noise_correlation is not None and not 0 <= noise_correlation < 1:
        raise UserError(f"--noise-correlation must be in [0, 1), got {noise_correlation}")

    def set_defaults(diffusion) -> None:
        diffusion.steps = steps or diffusion.steps
        diffusion.sampler = sampler or diffusion.sampler
        diffusion.cfg = diffusion.cfg if cfg is None else cfg
        if noise_correlation is not None:
            diffusion.noise_correlation = noise_correlation

    def check_family(arch: str) -> None:
        given = {"--steps": steps, "--sampler": sampler, "--cfg": cfg,
                 "--noise-correlation": noise_correlation}  # fmt: skip
        if family_of(arch) != "diffusion" and (
            flags := [k for k, v in given.items() if v is not None]
        ):
            raise ValueError(
                f"{', '.join(flags)}: diffusion sampling defaults; a {arch} model has none"
            )

    if not Path(checkpoint).exists():  # not a run, checkpoint or model folder: a shipped name?
        checkpoint = str(resolve_model(checkpoint, "CHECKPOINT"))
    if (Path(checkpoint) / "config.json").is_file():  # an exported model folder
        pipe = load_model(checkpoint)
        check_family(pipe.config.model.arch)
        set_defaults(pipe.config.diffusion)
        pipe.save(out, dtype=DTYPES[dtype])
        print(f"vidiff: re-exported model {checkpoint} to {out} ({dtype})")
        return
    path = resolve_checkpoint(checkpoint)
    state = load_state(path)
    config: Config = from_dict(Config, state["config"])
    from vidiff.train.objectives import ema_objective

    check_family(config.model.arch)
    if config.train.trainable == "lora":  # the adapter alone, in peft's layout
        from vidiff.adapters import save_adapter

        given = {"--steps": steps, "--sampler": sampler, "--cfg": cfg,
                 "--noise-correlation": noise_correlation}  # fmt: skip
        if flags := [k for k, v in given.items() if v is not None]:
            raise UserError(f"{', '.join(flags)}: a LoRA adapter samples as its base model does")
        save_adapter(ema_objective(config, state, path), out, base=config.model.init)
        print(f"vidiff: exported the LoRA adapter of {path} (step {state['step']}) to {out}")
        return
    set_defaults(config.diffusion)
    ema_objective(config, state, path).save(out, dtype=DTYPES[dtype])
    print(f"vidiff: exported EMA weights of {path} (step {state['step']}) to {out}")

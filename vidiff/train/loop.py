"""The training loop: one readable function on Hugging Face accelerate.

Per optimiser step: for each of ``grad_accum`` micro-batches, per-sample losses -> mean -> backward
(accelerate scales by 1 / grad_accum and lets DDP all-reduce only on the last one); then clip the
gradient norm, AdamW step, LR schedule step, EMA update -- followed by a few named hooks: log,
checkpoint, sample, eval. (The shape of k-diffusion's ``train.py`` and minGPT's ``trainer.py``.)

Exactness (see :mod:`vidiff.train.data`): every random draw of a step is made from per-sample seeds
derived from ``(train.seed, step, global sample index)``, so P processes with B / P samples each follow
one process with B samples up to float reduction order, and ``--resume`` continues bit-exactly on the
same hardware: the checkpoint holds model, EMA, optimiser, LR schedule, step, data position and RNG.

Adversarial training (the VAE's patch-GAN) uses an optional *discriminator protocol* on the model:
``discriminator_parameters() -> list[Parameter]`` are left out of the main optimiser and stepped by a
second AdamW (``train.lr`` x ``model.net.disc_lr_mult``), after the generator step, on the same
micro-batches, with the per-sample losses of ``discriminator_loss(video, captions, seeds) -> (B,) |
None`` (``None``: not active yet); ``set_train_step(step)`` tells the model the step about to run. Its
optimiser state is part of the checkpoint, so ``--resume`` stays exact.

Device placement, DDP/FSDP, mixed precision (bf16 autocast on GPU) and gradient accumulation all come
from accelerate, so the same function runs under ``python``, ``accelerate launch`` and ``torchrun``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator, DistributedDataParallelKwargs
from torch import nn
from torch.utils.data import Dataset

from vidiff.config import Config, from_dict, to_dict
from vidiff.train.checkpoint import (
    CheckpointWriter,
    latest_checkpoint,
    load_rng,
    load_state,
    set_rng_state,
)
from vidiff.train.data import (
    DataPlan,
    Layout,
    build_train_datasets,
    ensure_vocabulary,
    report_data,
    train_batches,
)
from vidiff.train.ema import EMA
from vidiff.train.logging import RunLogger, write_sample_sheet

MIXED_PRECISION = ("no", "bf16", "fp16", "auto")
# Keys that may change when a run is resumed (everything else that shapes the model must not).
RESUME_MUTABLE = {"data.num_workers", "model.net.gradient_checkpointing"}


@dataclass
class Hooks:
    """Optional callbacks, all called on the main process only, after the step they name.

    ``log(step, scalars)``, ``checkpoint(step, path)``, ``sample(step, ema_model, sheet_path)`` and
    ``evaluate(step, ema_model) -> scalars``. ``sample``/``evaluate`` default to a sample-sheet writer
    and :func:`vidiff.eval.commands.quick_eval` (when ``train.sample_every`` / ``train.eval_every`` ask for them).
    ``after_step(step, ema_model) -> stop`` runs after every optimiser step; ``True`` ends training
    there (a wall-clock budget, say; the result is then not ``finished``).
    """

    log: Callable[[int, dict[str, float]], None] | None = None
    checkpoint: Callable[[int, Path], None] | None = None
    sample: Callable[[int, nn.Module, Path], Any] | None = None
    evaluate: Callable[[int, nn.Module], dict[str, float]] | None = None
    after_step: Callable[[int, nn.Module], bool] | None = None


@dataclass
class TrainResult:
    """What a call to :func:`train` leaves behind."""

    step: int
    out_dir: Path
    model: nn.Module  # the (unwrapped) trained model
    ema: EMA | None
    checkpoint: Path | None  # the last checkpoint written or resumed from
    finished: bool  # train.steps reached
    scalars: list[dict[str, float]] = field(default_factory=list)  # what was logged by this call


class _LossModule(nn.Module):
    """Routes ``training_loss`` through ``forward`` so that DDP (and accelerate's autocast) see it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor, captions: list[str], seeds: list[int]) -> torch.Tensor:
        return self.model.training_loss(video, captions, seeds)


def lr_lambda(
    warmup_steps: int, total_steps: int = 0, decay_steps: int = 0
) -> Callable[[int], float]:
    """Linear warmup from ~0 to the base LR over ``warmup_steps``, then constant (as in EDM: diffusion
    models are sampled from the EMA, which does the averaging a decay schedule would), then, with
    ``decay_steps > 0``, a linear cool-down to 0 over the last ``decay_steps`` of ``total_steps``
    (warmup-stable-decay, Hägele et al. 2024; all of them in a shorter run): a run can be cooled
    down from any constant-LR checkpoint by resuming it with ``train.steps`` and
    ``train.decay_steps`` set."""
    if decay_steps < 0:
        raise ValueError(f"train.decay_steps must be >= 0, got {decay_steps}")
    decay_steps = min(decay_steps, total_steps)
    start = total_steps - decay_steps

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        if decay_steps and step >= start:
            return warm * max(0.0, (total_steps - step) / decay_steps)
        return warm

    return factor


def discriminator_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a model hands to the second (discriminator) optimiser; none by default."""
    get = getattr(model, "discriminator_parameters", None)
    return [p for p in get() if p.requires_grad] if get is not None else []


def build_optimizer(
    model: nn.Module, tc, exclude: list[nn.Parameter] | None = None
) -> torch.optim.AdamW:
    """AdamW; weight decay only on matrices/kernels, not on biases, norms and embeddings' 1-d params.
    ``exclude`` (the discriminator's parameters) is left to another optimiser."""
    skip = {id(p) for p in exclude or ()}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in skip]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": tc.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=tc.lr, betas=tuple(tc.betas))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resumable(config: Config, stored: dict[str, Any]) -> None:
    """The model-shaping part of the config must match the checkpoint's; name what differs."""
    now = _flatten({k: v for k, v in to_dict(config).items() if k != "train"})
    then = _flatten({k: v for k, v in stored.items() if k != "train"})
    diff = sorted(
        k for k in set(now) | set(then) if now.get(k) != then.get(k) and k not in RESUME_MUTABLE
    )
    if diff:
        shown = ", ".join(f"{k} ({then.get(k)!r} -> {now.get(k)!r})" for k in diff[:6])
        raise ValueError(f"cannot resume: the config differs from the checkpoint's in {shown}")


def _validate(tc) -> None:
    if tc.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"train.mixed_precision must be one of {MIXED_PRECISION}, got {tc.mixed_precision!r}"
        )
    for name in ("steps", "batch_size", "grad_accum", "log_every", "ckpt_every"):
        if getattr(tc, name) < 1:
            raise ValueError(f"train.{name} must be >= 1, got {getattr(tc, name)}")
    if tc.lr <= 0:
        raise ValueError(f"train.lr must be > 0, got {tc.lr}")


def _has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return torch.cuda.is_available()


def _write_config(config: Config, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    tmp.replace(path)


def default_sample_prompts(videos: Dataset, n: int = 8) -> list[str]:
    """Captions of the first ``n`` training items: a fixed, representative set of prompts."""
    return [videos[i]["caption"] for i in range(min(n, len(videos)))]


def resolved_net(model: nn.Module) -> dict | None:
    """The complete config of the model's network (preset values included), or None for a model
    without one (the VAE): checkpoints keep it so a later preset edit never changes a run."""
    net = getattr(model, "net", None)
    cfg = getattr(net, "config", None)
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else None


def with_stored_net(config: Config, state: dict | None) -> Config:
    """``config`` with the network a checkpoint was written with (``state["net"]``, complete, so no
    preset is consulted), or ``config`` itself for a fresh run or an older checkpoint."""
    if state is None or state.get("net") is None:
        return config
    model = dataclasses.replace(config.model, preset=None, net=dict(state["net"]))
    return dataclasses.replace(config, model=model)


def build_model(config: Config) -> nn.Module:
    if config.model.arch == "vae":  # the video autoencoder of the latent (DiT) route
        from vidiff.models.vae import build_vae

        return build_vae(config.model)
    from vidiff.pipeline import VideoPipeline

    return VideoPipeline(config.pipeline_config())


def train(
    config: Config,
    *,
    resume: bool = False,
    model: nn.Module | None = None,
    datasets: tuple[Dataset, Dataset | None] | None = None,
    hooks: Hooks | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config`` (a :class:`~vidiff.config.Config`) into ``config.train.out_dir``.

    ``model`` (anything with ``training_loss(video, captions, seeds) -> (B,)``) and ``datasets``
    (videos, optional images) default to what the config describes. ``resume=True`` continues from the
    newest checkpoint in the run directory (or starts fresh if there is none).
    """
    tc = config.train
    _validate(tc)
    hooks = hooks or Hooks()
    out_dir = Path(tc.out_dir)
    mixed = tc.mixed_precision
    if mixed == "auto":
        mixed = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    # Image steps (T = 1) skip the temporal layers: DDP must then not wait for their gradients.
    # cpu=True on a machine without an accelerator: only then does accelerate set up gloo (MULTI_CPU)
    # for processes started by `accelerate launch --multi_gpu` / `torchrun` instead of running each
    # process alone.
    ddp_kwargs = DistributedDataParallelKwargs(find_unused_parameters=config.data.image_ratio > 0)
    accelerator = Accelerator(
        cpu=not _has_accelerator(),
        mixed_precision=mixed,
        gradient_accumulation_steps=tc.grad_accum,
        kwargs_handlers=[ddp_kwargs],
    )
    is_main = accelerator.is_main_process
    layout = Layout(
        tc.batch_size, accelerator.num_processes, accelerator.process_index, tc.grad_accum
    )

    # ---- where do we start? -------------------------------------------------------------------
    ckpt = latest_checkpoint(out_dir)
    state = None
    if ckpt is not None and not resume:
        raise ValueError(
            f"{out_dir} already holds checkpoints (latest: {ckpt.name}); pass --resume to continue "
            "it, or choose another train.out_dir"
        )
    log = print if is_main else (lambda *a, **k: None)
    if resume and ckpt is None:
        log(f"vidiff: no checkpoint in {out_dir}; starting from step 0")
    if ckpt is not None:
        state = load_state(ckpt)
        stored = state["config"]
        # The vocabulary built from the data at the start travels with the checkpoint.
        vocab = stored.get("model", {}).get("text", {}).get("vocab")
        if vocab and config.model.text_encoder == "builtin" and not config.model.text.get("vocab"):
            config.model.text = {**config.model.text, "vocab": vocab}
        if state["step"] >= tc.steps:
            log(
                f"vidiff: run in {out_dir} already finished at step {state['step']} (train.steps="
                f"{tc.steps}); nothing to do. Raise train.steps to train further."
            )
            restored = from_dict(Config, stored)
            m = model if model is not None else build_model(with_stored_net(restored, state))
            m.load_state_dict(state["model"])
            return TrainResult(state["step"], out_dir, m, None, ckpt, True)

    # ---- data, model, optimiser ----------------------------------------------------------------
    if datasets is None:
        datasets = build_train_datasets(config.data, tc.seed)
    videos, images = datasets
    report_data(log, videos, images)
    if model is None:
        ensure_vocabulary(config, videos, images)
        if tc.gradient_checkpointing:
            config.model.net = {**config.model.net, "gradient_checkpointing": True}
    if state is not None:
        check_resumable(config, state["config"])
    torch.manual_seed(tc.seed)  # identical initial weights on every process
    if model is None:
        model = build_model(with_stored_net(config, state))
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_config(config, out_dir / "config.yaml")

    d_params = discriminator_parameters(model)
    optimizer = build_optimizer(model, tc, exclude=d_params)
    d_optimizer = None
    if d_params:
        # The discriminator never gets gradients through the DDP-wrapped generator loss.
        ddp_kwargs.find_unused_parameters = True
        d_lr = tc.lr * float(config.model.net.get("disc_lr_mult", 1.0))
        d_optimizer = torch.optim.AdamW(d_params, lr=d_lr, betas=tuple(tc.betas), weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(tc.warmup_steps, tc.steps, tc.decay_steps)
    )
    loss_module, optimizer = accelerator.prepare(_LossModule(model), optimizer)
    # The LR schedule is stepped by hand once per optimiser step: accelerate's scheduler wrapper
    # would step it once per process, which breaks "P processes == 1 process".
    ema = EMA(model, tc.ema_decay, warmup=tc.ema_warmup)
    step, positions = 0, {}
    if state is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:  # same config, different code: say so instead of a shape dump
            detail = (str(e).splitlines()[1:] or [str(e)])[0].strip()
            raise ValueError(
                f"checkpoint {ckpt} does not fit the model built from its config (did the model "
                f"code change since it was written?): {detail}"
            ) from e
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # The schedule is this run's (e.g. a cool-down added on resume), not the one saved.
        for group, base, fn in zip(
            optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas
        ):
            group["lr"] = base * fn(scheduler.last_epoch)
        if d_optimizer is not None:
            d_optimizer.load_state_dict(state["d_optimizer"])
        step, positions = int(state["step"]), dict(state["data_position"])
        rng = load_rng(ckpt, accelerator.process_index)
        if rng is not None:
            set_rng_state(rng)
        log(f"vidiff: resumed {out_dir} from {ckpt.name} (step {step})")

    plan = DataPlan(
        tc.seed,
        layout,
        len(videos),
        None if images is None else len(images),
        config.data.image_ratio,
    )
    batches = train_batches(
        plan,
        videos,
        images,
        start_step=step,
        positions=positions,
        num_workers=config.data.num_workers,
        pin_memory=accelerator.device.type == "cuda",
    )
    writer = CheckpointWriter(out_dir, tc.keep_last)
    logger = RunLogger(
        out_dir, total_steps=tc.steps, start_step=step, enabled=is_main, progress=progress
    )
    d_ids = {id(p) for p in d_params}
    params = [p for p in model.parameters() if p.requires_grad and id(p) not in d_ids]
    for key, hook in (("sample_every", hooks.sample), ("eval_every", hooks.evaluate)):
        # The default sample/eval hooks generate videos; an autoencoder cannot.
        if getattr(tc, key) > 0 and hook is None and not hasattr(model, "generate"):
            raise ValueError(
                f"train.{key} > 0 needs a model that generates videos (or a hook); "
                f"{type(model).__name__} does not: set train.{key}=0"
            )
    sample_prompts: list[str] | None = None
    if tc.eval_every > 0 and hooks.evaluate is None:
        hooks.evaluate = _default_eval(config)

    def save_checkpoint() -> Path:
        full = None
        if is_main:
            full = {
                "step": step,
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                **({} if d_optimizer is None else {"d_optimizer": d_optimizer.state_dict()}),
                "data_position": positions,
                "config": to_dict(config),
                "net": resolved_net(model),
                "num_processes": accelerator.num_processes,
            }
        path = writer.save(
            step,
            full,
            rank=accelerator.process_index,
            is_main=is_main,
            barrier=accelerator.wait_for_everyone,
        )
        if is_main and hooks.checkpoint is not None:
            hooks.checkpoint(step, path)
        return path

    # ---- the loop ------------------------------------------------------------------------------
    model.train()
    loss_sum = torch.zeros((), device=accelerator.device)
    d_loss_sum = torch.zeros((), device=accelerator.device)
    window, t_window = 0, time.perf_counter()
    logged: list[dict[str, float]] = []
    try:
        while step < tc.steps:
            if hasattr(model, "set_train_step"):
                model.set_train_step(step)
            micros = next(batches)
            for micro in micros:
                with accelerator.accumulate(loss_module):
                    video = micro["video"].to(accelerator.device, non_blocking=True)
                    losses = loss_module(video, micro["caption"], micro["seed"])  # (m,)
                    accelerator.backward(losses.mean())
                loss_sum += losses.detach().float().sum()
            # The total norm is logged either way; it is clipped only when train.grad_clip > 0.
            max_norm = tc.grad_clip if tc.grad_clip > 0 else math.inf
            grad_norm = accelerator.clip_grad_norm_(params, max_norm)
            lr = optimizer.param_groups[0]["lr"]  # the LR this step used
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            if d_optimizer is not None:
                d_loss_sum += _discriminator_step(accelerator, model, d_optimizer, micros)
            decay = ema.update()
            positions = plan.advance(step, positions)
            step += 1
            window += 1
            logger.step()

            if step % tc.log_every == 0 or step == tc.steps:
                # One collective per log, not per step: the mean loss over the window, all processes.
                mean_loss = accelerator.reduce(loss_sum, reduction="sum").item() / (
                    window * tc.batch_size
                )
                dt = time.perf_counter() - t_window
                scalars = {
                    "loss": mean_loss,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "ema_decay": decay,
                    "it_per_s": window / dt,
                    "samples_per_s": window * tc.batch_size / dt,
                }
                if d_optimizer is not None:
                    d_mean = accelerator.reduce(d_loss_sum, reduction="sum").item()
                    scalars["d_loss"] = d_mean / (window * tc.batch_size)
                    d_loss_sum.zero_()
                if not math.isfinite(mean_loss):
                    raise FloatingPointError(f"loss is {mean_loss} at step {step}; lower train.lr?")
                logger.log(step, scalars)
                logged.append({"step": step, **scalars})
                if is_main and hooks.log is not None:
                    hooks.log(step, scalars)
                loss_sum.zero_()
                window, t_window = 0, time.perf_counter()
            if step % tc.ckpt_every == 0 or step == tc.steps:
                ckpt = save_checkpoint()
            # Sampling and eval run on the main process; the others wait at the next collective.
            if (
                tc.sample_every > 0
                and (step % tc.sample_every == 0 or step == tc.steps)
                and is_main
            ):
                if sample_prompts is None:
                    sample_prompts = default_sample_prompts(videos)
                path = out_dir / "samples" / f"step-{step:07d}.mp4"
                if hooks.sample is not None:
                    hooks.sample(step, ema.module, path)
                else:
                    write_sample_sheet(
                        ema.module,
                        sample_prompts,
                        list(range(len(sample_prompts))),
                        path,
                        fps=config.data.fps,
                    )
                logger.write(f"step {step}: samples -> {path}")
            if tc.eval_every > 0 and (step % tc.eval_every == 0 or step == tc.steps) and is_main:
                scores = hooks.evaluate(step, ema.module)
                logger.log(step, {f"eval/{k}": float(v) for k, v in scores.items()}, show=())
            if hooks.after_step is not None and _agreed_stop(
                accelerator, is_main and bool(hooks.after_step(step, ema.module))
            ):
                break
    finally:
        logger.close()
    accelerator.wait_for_everyone()
    return TrainResult(step, out_dir, model, ema, ckpt, step >= tc.steps, logged)


def _agreed_stop(accelerator: Accelerator, stop: bool) -> bool:
    """The main process's stop decision, shared so that every process leaves the loop together."""
    if accelerator.num_processes == 1:
        return stop
    flag = torch.tensor(float(stop), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _discriminator_step(
    accelerator: Accelerator, model: nn.Module, d_optimizer: torch.optim.Optimizer, micros: list
) -> torch.Tensor:
    """One discriminator update on the step's micro-batches (after the generator's). Runs on the
    unwrapped model (the generator's DDP wrapper is not involved), so with several processes the
    gradients are averaged here. Returns the summed per-sample losses (0 while inactive)."""
    total = torch.zeros((), device=accelerator.device)
    active = False
    for micro in micros:
        video = micro["video"].to(accelerator.device, non_blocking=True)
        with accelerator.autocast():
            losses = model.discriminator_loss(video, micro["caption"], micro["seed"])
        if losses is None:
            continue
        active = True
        (losses.mean() / len(micros)).backward()
        total += losses.detach().float().sum()
    if active:
        params = [p for g in d_optimizer.param_groups for p in g["params"] if p.grad is not None]
        if accelerator.num_processes > 1:
            for p in params:
                p.grad = accelerator.reduce(p.grad, reduction="mean")
        d_optimizer.step()
        d_optimizer.zero_grad(set_to_none=True)
    return total


def _default_eval(config: Config) -> Callable[[int, nn.Module], dict[str, float]]:
    """``train.eval_every`` logs :func:`vidiff.eval.commands.quick_eval` (probe scores of a few EMA
    samples on the synthetic dataset being trained on) under ``eval/...`` in ``metrics.jsonl``."""
    from vidiff.eval.commands import quick_eval

    tc = config.train
    return lambda step, model: quick_eval(
        model, num_videos=tc.eval_videos, seed=tc.seed, dataset=config.data.name
    )

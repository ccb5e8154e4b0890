"""The training loop: one readable function on Hugging Face accelerate.

Per optimiser step (:func:`train_step`): ``begin_step`` hook; for each of ``grad_accum``
micro-batches, per-sample losses -> mean -> backward (accelerate scales by 1 / grad_accum and lets DDP
all-reduce only on the last one); clip the gradient norm, AdamW step, LR schedule step; the objective's
extra steps (a GAN discriminator); ``end_step`` hook; EMA update. Then :func:`train` runs a few named
hooks: log, checkpoint, sample, eval. (The shape of k-diffusion's ``train.py`` and minGPT's
``trainer.py``.) What is trained is an *objective* (:mod:`vidiff.train.objectives`): anything with
``training_loss(video, captions, seeds) -> (B,)``; the loop never names an architecture.

Exactness (see :mod:`vidiff.train.data`): every random draw of a step is made from per-sample seeds
derived from ``(train.seed, step, global sample index)``, so P processes with B / P samples each follow
one process with B samples up to float reduction order, and ``--resume`` continues bit-exactly on the
same hardware: the checkpoint holds model, EMA, optimisers, LR schedule, step, data position and RNG.
A resume that would break this (another global batch, gradient accumulation or process count) is
refused unless ``allow_changes``.

Divergence (:class:`TrainingDiverged`): every step's loss and gradient norm are folded into a flag on
the device (no sync); the flag is read every step on CPU, at every log step on an accelerator, and
before every checkpoint, together with a check of all weights and the EMA. A run that produced a NaN
or an infinity stops there, naming the step and the last good checkpoint, and never writes one.

Device placement, DDP, mixed precision (bf16 autocast on GPU) and gradient accumulation all come
from accelerate, so the same function runs under ``python``, ``accelerate launch`` and ``torchrun``.
FSDP (``train.fsdp`` or ``accelerate launch --use_fsdp``) shards the objective and its EMA with
torch's ``fully_shard`` instead of DDP (:mod:`vidiff.train.fsdp`); checkpoints then gather full
tensors, so they are the same files as without it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from torch import nn
from torch.utils.data import Dataset

from vidiff.config import Config, from_dict, to_dict
from vidiff.files import first_nonfinite, load_strict
from vidiff.registry import resolve_config_models
from vidiff.train.buckets import plan_buckets
from vidiff.train.checkpoint import CheckpointWriter, load_rng, set_rng_state, start_point
from vidiff.train.data import (
    DataPlan,
    Layout,
    build_train_datasets,
    ensure_vocabulary,
    report_data,
    train_batches,
)
from vidiff.train.ema import EMA
from vidiff.train.finetune import check_finetune, resolve_init, set_trainable
from vidiff.train.fsdp import (
    accelerate_env,
    check_fsdp,
    first_nonfinite_sharded,
    fsdp_requested,
    gather_full,
    shard,
    shard_like,
    shard_optimizer_state,
)
from vidiff.train.latent_cache import cached_training_set, check_cacheable
from vidiff.train.logging import RunLogger, default_eval_hook, default_sample_hook
from vidiff.train.objectives import (
    ExtraStep,
    call_hook,
    extra_steps,
    run_objective,
    trainable_parameters,
)
from vidiff.train.settings import (
    build_optimizer,
    check_exact_resume,
    check_resumable,
    lr_lambda,
    mixed_precision,
    resolved_net,
    validate,
    with_stored_net,
    write_config,
)

__all__ = ["Hooks", "TrainResult", "TrainingDiverged", "lr_lambda", "train", "with_stored_net"]


_NONE_BAD = 2**62  # Run.first_bad while every step was finite


class TrainingDiverged(ValueError):
    """The loss, the gradient or the weights became NaN or infinite; the run stopped before writing
    a checkpoint. The message names the step and the last good checkpoint."""


@dataclass
class Hooks:
    """Optional callbacks, all called on the main process only, after the step they name.

    ``log(step, scalars)``, ``checkpoint(step, path)``, ``sample(step, ema_model, sheet_path)`` and
    ``evaluate(step, ema_model) -> scalars``. ``sample``/``evaluate`` default to a sample-sheet writer
    and :func:`vidiff.eval.evaluate.quick_eval` (when ``train.sample_every`` / ``train.eval_every`` ask for them).
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
    model: nn.Module  # the (unwrapped) trained objective
    ema: EMA | None
    checkpoint: Path | None  # the last checkpoint written or resumed from
    finished: bool  # train.steps reached
    scalars: list[dict[str, float]] = field(default_factory=list)  # what was logged by this call


class _LossModule(nn.Module):
    """Routes ``training_loss`` through ``forward`` so that DDP (and accelerate's autocast) see it."""

    def __init__(self, model: nn.Module, encoded: bool = False):
        super().__init__()
        self.model = model
        self.encoded = encoded  # batches of clips already in model space (data.cache_latents)

    def forward(
        self, video: torch.Tensor, captions: list[str], seeds: list[int], **cond
    ) -> torch.Tensor:
        if self.encoded:
            cond["encoded"] = True
        return self.model.training_loss(video, captions, seeds, **cond)


@dataclass
class Run:
    """Everything a run holds between optimiser steps (what :func:`setup` builds and a checkpoint
    saves)."""

    config: Config
    accelerator: Accelerator
    objective: nn.Module  # unwrapped
    loss_module: nn.Module  # the objective's loss, wrapped by accelerate (DDP) or sharded (FSDP)
    params: list[nn.Parameter]  # what the main optimiser steps (and its gradient is clipped over)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    extras: list[tuple[ExtraStep, torch.optim.Optimizer]]
    ema: EMA
    step: int = 0
    positions: dict = field(default_factory=dict)
    # The first step (1-based) whose loss or gradient norm was not finite; _NONE_BAD while none was.
    first_bad: torch.Tensor | None = None
    fsdp: bool = False  # objective and EMA sharded over the processes (vidiff.train.fsdp)
    # FSDP: an unsharded copy on the main process's CPU that the sample/eval hooks get the EMA in.
    plain: nn.Module | None = None

    def state_dict(self) -> dict[str, Any] | None:
        """The full resumable state (the main process writes it; RNG states are per process). Under
        FSDP every process must call it (the shards are gathered); only the main one gets the state."""
        state = {
            "step": self.step,
            "model": self.objective.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **{f"{x.name}_optimizer": opt.state_dict() for x, opt in self.extras},
            "data_position": self.positions,
            "config": to_dict(self.config),
            "net": resolved_net(self.objective),
            "num_processes": self.accelerator.num_processes,
        }
        return gather_full(state, self.accelerator.is_main_process) if self.fsdp else state

    def ema_model(self) -> nn.Module | None:
        """The EMA module for the hooks: ``ema.module``, or under FSDP (a collective) the gathered
        EMA weights in :attr:`plain` on the main process (None on the others)."""
        if not self.fsdp:
            return self.ema.module
        full = gather_full(self.ema.module.state_dict(), self.plain is not None)
        if self.plain is not None:
            self.plain.load_state_dict(full)
        return self.plain


def setup(config: Config, objective: nn.Module, *, keep_plain: bool = False) -> Run:
    """Accelerator, optimisers (main + one per extra step), LR schedule and EMA around ``objective``
    (sharded under FSDP, where ``keep_plain`` keeps an unsharded copy on the main process for
    hooks)."""
    tc = config.train
    fsdp = fsdp_requested(tc.fsdp)
    # Image steps (T = 1) skip the temporal layers, and extra steps' parameters never get gradients
    # through the main loss: DDP must then not wait for them.
    extras = extra_steps(objective)
    ddp_kwargs = DistributedDataParallelKwargs(
        find_unused_parameters=config.data.image_ratio > 0 or bool(extras)
    )
    # cpu=True on a machine without an accelerator: only then does accelerate set up gloo (MULTI_CPU)
    # for processes started by `accelerate launch --multi_gpu` / `torchrun`.
    with accelerate_env():  # accelerate must not set up its own FSDP (vidiff.train.fsdp)
        accelerator = Accelerator(
            cpu=not _has_accelerator(),
            mixed_precision=mixed_precision(tc.mixed_precision),
            gradient_accumulation_steps=tc.grad_accum,
            kwargs_handlers=[ddp_kwargs],
        )
    plain = ema_copy = None
    if fsdp:
        check_fsdp(accelerator.num_processes, tc.mixed_precision, type(objective).__name__, extras)
        if keep_plain and accelerator.is_main_process:
            plain = copy.deepcopy(objective).eval().requires_grad_(False)
        ema_copy = copy.deepcopy(objective)
        shard(_LossModule(ema_copy))
        loss_module = shard(_LossModule(objective, config.data.cache_latents))
    params = trainable_parameters(objective, extras)
    optimizer = build_optimizer(params, tc)
    betas = tuple(tc.betas)
    extra_opts = [  # no weight decay on a discriminator
        (x, torch.optim.AdamW(x.parameters, lr=tc.lr * x.lr_mult, betas=betas, weight_decay=0.0))
        for x in extras
    ]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(tc.warmup_steps, tc.steps, tc.decay_steps)
    )
    if fsdp:
        optimizer = accelerator.prepare(optimizer)
    else:
        loss_module, optimizer = accelerator.prepare(
            _LossModule(objective, config.data.cache_latents), optimizer
        )
    # The LR schedule is stepped by hand once per optimiser step: accelerate's scheduler wrapper
    # would step it once per process, which breaks "P processes == 1 process".
    ema = EMA(objective, tc.ema_decay, warmup=tc.ema_warmup, module=ema_copy)
    return Run(
        config=config,
        accelerator=accelerator,
        objective=objective,
        loss_module=loss_module,
        params=params,
        optimizer=optimizer,
        scheduler=scheduler,
        extras=extra_opts,
        ema=ema,
        first_bad=torch.full((), _NONE_BAD, device=accelerator.device),
        fsdp=fsdp,
        plain=plain,
    )


def restore(run: Run, state: dict, ckpt: Path) -> None:
    """Load a checkpoint's state into ``run`` (model, EMA, optimisers, schedule, step, data, RNG)."""
    model, ema, opt_state = state["model"], state["ema"], state["optimizer"]
    if run.fsdp:  # the checkpoint holds full tensors: keep this process's shards
        model = shard_like(run.objective, model)
        ema = {**ema, "module": shard_like(run.ema.module, ema["module"])}
        opt_state = shard_optimizer_state(run.optimizer, opt_state)
    load_strict(run.objective, model, f"checkpoint {ckpt}")
    run.ema.load_state_dict(ema)
    run.optimizer.load_state_dict(opt_state)
    run.scheduler.load_state_dict(state["scheduler"])
    # The schedule is this run's (e.g. a cool-down added on resume), not the one saved.
    sch = run.scheduler
    for group, base, fn in zip(run.optimizer.param_groups, sch.base_lrs, sch.lr_lambdas):
        group["lr"] = base * fn(sch.last_epoch)
    for x, opt in run.extras:
        opt.load_state_dict(state[f"{x.name}_optimizer"])
    run.step, run.positions = int(state["step"]), dict(state["data_position"])
    rng = load_rng(ckpt, run.accelerator.process_index)
    if rng is not None:
        set_rng_state(rng)


def train_step(run: Run, micros: list[dict]) -> dict[str, torch.Tensor | float]:
    """One optimiser step on ``micros`` (the ``grad_accum`` micro-batches of this process). Returns
    device tensors (summed per-sample losses, the gradient norm) and the LR and EMA decay used; reads
    nothing back from the device."""
    acc, tc = run.accelerator, run.config.train
    call_hook(run.objective, "begin_step", run.step)
    loss_sum = torch.zeros((), device=acc.device)
    # accelerate adds autocast to the model it wrapped; the FSDP-sharded one it never saw.
    autocast = acc.autocast if run.fsdp else nullcontext
    for micro in micros:
        with acc.accumulate(run.loss_module), autocast():
            video = micro["video"].to(acc.device, non_blocking=True)
            # the dataset's own conditionings (docs/architecture.md, "Adding a conditioning")
            cond = {k: v.to(acc.device) for k, v in micro.get("cond", {}).items()}
            losses = run.loss_module(video, micro["caption"], micro["seed"], **cond)  # (m,)
            acc.backward(losses.mean())
        loss_sum += losses.detach().float().sum()
    # The total norm is logged either way; it is clipped only when train.grad_clip > 0.
    max_norm = tc.grad_clip if tc.grad_clip > 0 else math.inf
    grad_norm = acc.clip_grad_norm_(run.params, max_norm)
    lr = run.optimizer.param_groups[0]["lr"]  # the LR this step used
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    out: dict[str, torch.Tensor | float] = {"loss": loss_sum, "grad_norm": grad_norm, "lr": lr}
    for x, opt in run.extras:
        out[f"{x.name}_loss"] = _extra_step(acc, x, opt, micros)
    call_hook(run.objective, "end_step", run.step)
    out["ema_decay"] = run.ema.update()
    # Fold this step's health into the flag without a sync: a NaN/inf loss or gradient norm. (With
    # fp16 loss scaling an inf gradient is routine: the scaler skips that step and lowers its scale.)
    finite = torch.isfinite(loss_sum)
    if acc.scaler is None:
        finite = finite & torch.isfinite(torch.as_tensor(grad_norm).to(loss_sum))
    bad_here = torch.full_like(run.first_bad, run.step + 1)
    run.first_bad = torch.where(finite, run.first_bad, torch.minimum(run.first_bad, bad_here))
    run.step += 1
    return out


def train(
    config: Config,
    *,
    resume: bool = False,
    allow_changes: bool = False,
    model: nn.Module | None = None,
    datasets: tuple[Dataset, Dataset | None] | None = None,
    hooks: Hooks | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config`` (a :class:`~vidiff.config.Config`) into ``config.train.out_dir``.

    ``model`` (an objective: anything with ``training_loss(video, captions, seeds) -> (B,)``, see
    :mod:`vidiff.train.objectives`) and ``datasets`` (videos, optional images) default to what the
    config describes. ``resume=True`` continues from the newest readable checkpoint in the run
    directory (or starts fresh if there is none); ``allow_changes`` lets it change what makes a resume
    exact (global batch size, gradient accumulation, number of processes). A NaN or infinity stops the
    run with :class:`TrainingDiverged`.
    """
    # Models named in the config (a shipped name or a folder), then model.init: the model and its
    # diffusion settings.
    config = resolve_init(resolve_config_models(config))
    tc = config.train
    validate(tc)
    check_finetune(config)
    hooks = hooks or Hooks()
    out_dir = Path(tc.out_dir)
    # The process group, as the Accelerator of `setup` will see it (cpu=True: gloo on CPU machines).
    is_main = PartialState(cpu=not _has_accelerator()).is_main_process
    log = print if is_main else (lambda *a, **k: None)

    ckpt, state = start_point(out_dir, resume, log)
    if state is not None:
        # The vocabulary built from the data at the start travels with the checkpoint.
        vocab = state["config"].get("model", {}).get("text", {}).get("vocab")
        if vocab and config.model.text_encoder == "builtin" and not config.model.text.get("vocab"):
            config.model.text = {**config.model.text, "vocab": vocab}
        if state["step"] >= tc.steps:
            log(
                f"vidiff: run in {out_dir} already finished at step {state['step']} (train.steps="
                f"{tc.steps}); nothing to do. Raise train.steps to train further."
            )
            m = (
                model
                if model is not None
                else run_objective(from_dict(Config, state["config"]), state, training=False)
            )
            load_strict(m, state["model"], f"checkpoint {ckpt}")
            return TrainResult(state["step"], out_dir, m, None, ckpt, True)

    # ---- data, objective, optimisers -----------------------------------------------------------
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
        model = run_objective(config, state)
    set_trainable(model, tc.trainable, config.model.arch)
    if config.data.cache_latents:
        check_cacheable(model, config.data)
    if tc.trainable == "temporal" and config.data.image_ratio > 0:
        # A 1-frame batch passes no temporal layer: its loss would depend on no trainable weight.
        raise ValueError(
            "train.trainable=temporal trains nothing on image batches; set data.image_ratio=0 "
            f"(got {config.data.image_ratio:g}) or train more than the temporal layers"
        )
    # Under FSDP the hooks get the EMA gathered into an unsharded copy on the main process.
    wants_ema = tc.sample_every > 0 or tc.eval_every > 0 or hooks.after_step is not None
    run = setup(config, model, keep_plain=wants_ema)
    acc = run.accelerator
    if run.fsdp:
        log(
            f"vidiff: FSDP: model, optimiser state and EMA sharded over {acc.num_processes} processes"
        )
    if state is not None:
        check_exact_resume(config, state, acc.num_processes, allow_changes)
        restore(run, state, ckpt)
        log(f"vidiff: resumed {out_dir} from {ckpt.name} (step {run.step})")
    if config.data.cache_latents:  # encoded once with the (restored) VAE, then read back
        videos = cached_training_set(run, videos, is_main, log)
    # data.buckets: each bucket's global batch (None without), checked before anything is written
    per_bucket = plan_buckets(config, model, videos, acc.num_processes * tc.grad_accum)
    if per_bucket:
        shown = ", ".join(f"{b} (batch {n})" for b, n in zip(videos.buckets, per_bucket))
        log(f"vidiff: one clip shape per step from data.buckets: {shown}")
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_config(config, out_dir / "config.yaml")

    layout = Layout(tc.batch_size, acc.num_processes, acc.process_index, tc.grad_accum)
    n_images = None if images is None else len(images)
    plan = DataPlan(tc.seed, layout, len(videos), n_images, config.data.image_ratio, per_bucket)
    batches = train_batches(
        plan,
        videos,
        images,
        start_step=run.step,
        positions=run.positions,
        num_workers=config.data.num_workers,
        pin_memory=acc.device.type == "cuda",
    )
    writer = CheckpointWriter(out_dir, tc.keep_last)
    logger = RunLogger(
        out_dir, total_steps=tc.steps, start_step=run.step, enabled=is_main, progress=progress
    )
    for key, hook in (("sample_every", hooks.sample), ("eval_every", hooks.evaluate)):
        # The default sample/eval hooks generate videos; an autoencoder cannot.
        if getattr(tc, key) > 0 and hook is None and not hasattr(model, "generate"):
            raise ValueError(
                f"train.{key} > 0 needs a model that generates videos (or a hook); "
                f"{type(model).__name__} does not: set train.{key}=0"
            )
    if tc.sample_every > 0 and hooks.sample is None:
        hooks.sample = default_sample_hook(config, videos)
    if tc.eval_every > 0 and hooks.evaluate is None:
        hooks.evaluate = default_eval_hook(config)

    # ---- the loop ------------------------------------------------------------------------------
    model.train()
    sums: dict[str, torch.Tensor] = {}
    window, n, t_window = 0, 0, time.perf_counter()
    logged: list[dict[str, float]] = []
    check_every_step = acc.device.type == "cpu"  # reading the flag costs no device sync there
    try:
        while run.step < tc.steps:
            out = train_step(run, next(batches))
            n += plan.global_batch(run.step - 1)  # clips this step, over all processes
            run.positions = plan.advance(run.step - 1, run.positions)
            step = run.step
            for k, v in out.items():
                if k.endswith("loss"):
                    sums[k] = sums.get(k, 0) + v
            window += 1
            logger.step()
            is_log = step % tc.log_every == 0 or step == tc.steps
            is_ckpt = step % tc.ckpt_every == 0 or step == tc.steps
            if check_every_step or is_log:
                _check_finite(run, ckpt)

            if is_log:
                # One collective per log, not per step: the mean losses over the window, all processes.
                dt = time.perf_counter() - t_window
                means = {k: acc.reduce(v, reduction="sum").item() / n for k, v in sums.items()}
                scalars = {
                    "loss": means.pop("loss"),
                    "lr": out["lr"],
                    "grad_norm": float(out["grad_norm"]),
                    "ema_decay": out["ema_decay"],
                    "it_per_s": window / dt,
                    "samples_per_s": n / dt,
                    **means,
                }
                logger.log(step, scalars)
                logged.append({"step": step, **scalars})
                if is_main and hooks.log is not None:
                    hooks.log(step, scalars)
                sums, window, n, t_window = {}, 0, 0, time.perf_counter()
            if is_ckpt:
                _check_finite(run, ckpt, weights=True)  # right before writing: nothing bad on disk
                ckpt = writer.save(
                    step,
                    run.state_dict() if is_main or run.fsdp else None,
                    rank=acc.process_index,
                    is_main=is_main,
                    barrier=acc.wait_for_everyone,
                )
                if is_main and hooks.checkpoint is not None:
                    hooks.checkpoint(step, ckpt)
            # Sampling and eval run on the main process; the others wait at the next collective.
            due = [
                getattr(tc, key) > 0 and (step % getattr(tc, key) == 0 or step == tc.steps)
                for key in ("sample_every", "eval_every")
            ]
            if any(due) or hooks.after_step is not None:
                ema_model = run.ema_model()  # a collective under FSDP
            if due[0] and is_main:
                path = out_dir / "samples" / f"step-{step:07d}.mp4"
                hooks.sample(step, ema_model, path)
                logger.write(f"step {step}: samples -> {path}")
            if due[1] and is_main:
                scores = hooks.evaluate(step, ema_model)
                logger.log(step, {f"eval/{k}": float(v) for k, v in scores.items()}, show=())
            if hooks.after_step is not None and _agreed_stop(
                acc, is_main and bool(hooks.after_step(step, ema_model))
            ):
                break
    finally:
        logger.close()
    acc.wait_for_everyone()
    return TrainResult(run.step, out_dir, model, run.ema, ckpt, run.step >= tc.steps, logged)


def _check_finite(run: Run, last_good: Path | None, *, weights: bool = False) -> None:
    """Raise :class:`TrainingDiverged` if a step so far had a non-finite loss or gradient norm, or
    (``weights``: before a checkpoint) a weight or EMA weight is not finite. All processes decide
    alike (the flag is gathered; weights are replicas, or under FSDP their check is all-reduced), so
    they stop together."""
    first_bad = run.first_bad
    if run.accelerator.num_processes > 1:
        first_bad = run.accelerator.gather(first_bad[None]).min()
    what = None
    if (bad_step := int(first_bad)) != _NONE_BAD:
        what, step = "the loss or gradient became NaN/inf", bad_step
    elif weights:
        step = run.step
        for name, module in (("weight", run.objective), ("EMA weight", run.ema.module)):
            if run.fsdp:  # shards: every process checks its own, and they agree on the first bad
                bad = first_nonfinite_sharded(module, run.accelerator.device)
            else:
                bad = first_nonfinite(dict(module.named_parameters()))
            if bad is not None:
                what = f"{name} {bad!r} is NaN/inf"
                break
    if what is None:
        return
    good = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written"
    raise TrainingDiverged(
        f"training diverged at step {step}: {what}; stopped without checkpointing it ({good}; "
        "resume with --resume and e.g. a lower train.lr)"
    )


def _has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "is_available"):
        return bool(acc.is_available())
    return torch.cuda.is_available()


def _agreed_stop(accelerator: Accelerator, stop: bool) -> bool:
    """The main process's stop decision, shared so that every process leaves the loop together."""
    if accelerator.num_processes == 1:
        return stop
    flag = torch.tensor(float(stop), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _extra_step(
    accelerator: Accelerator, extra: ExtraStep, optimizer: torch.optim.Optimizer, micros: list
) -> torch.Tensor:
    """One update of an extra step (a discriminator) on the step's micro-batches, after the main one.
    Runs on the unwrapped objective (the DDP wrapper is not involved), so with several processes the
    gradients are averaged here. Returns the summed per-sample losses (0 while inactive)."""
    total = torch.zeros((), device=accelerator.device)
    active = False
    for micro in micros:
        video = micro["video"].to(accelerator.device, non_blocking=True)
        with accelerator.autocast():
            losses = extra.loss(video, micro["caption"], micro["seed"])
        if losses is None:
            continue
        active = True
        (losses.mean() / len(micros)).backward()
        total += losses.detach().float().sum()
    if active:
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if accelerator.num_processes > 1:
            for p in params:
                p.grad = accelerator.reduce(p.grad, reduction="mean")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return total

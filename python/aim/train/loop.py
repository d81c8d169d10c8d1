"""Stage-I training (docs/method.md §6): the loop that ties config, data, model, parallelism and checkpoints.

:func:`train` runs the same code on one CPU process and on many GPUs under ``torchrun``. One
optimiser step: for each of this process's micro-batches, latents and normalised actions
(aim.runtime.preprocessing), the flow-matching losses under autocast (bf16 on GPU), backward with
gradients reduced on the last micro-batch only; then the losses averaged over processes are
checked (a NaN or inf stops the run, naming the step, before anything is written), gradients are
clipped, AdamW and the schedule step, metrics are logged, and a checkpoint is written every
``checkpoint.every`` steps and at the end. Steps are counted from 1: step k is the k-th update.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from aim.data.reader import DatasetReader
from aim.errors import ConfigError, NonFiniteLossError
from aim.ops.backend import attention_backend
from aim.runtime.bundle import ModelBundle, bundle_metadata
from aim.runtime.checkpoint import load_checkpoint, save_checkpoint
from aim.runtime.distributed import (
    Distributed,
    gradient_sync,
    init_distributed,
    parallelize,
    resolve_strategy,
    shutdown,
)
from aim.runtime.monitor import Monitor
from aim.runtime.optim import make_optimizer, make_scheduler
from aim.runtime.preprocessing import (
    batch_prompts,
    clip_tensors,
    encode_text,
    tokens_per_clip,
)
from aim.runtime.run_dir import CONFIG_FILE, prepare_run_dir
from aim.train.config import TrainConfig, save_config
from aim.train.data_order import micro_batch_generator
from aim.train.fresh_bundle import build_bundle
from aim.train.loader import clip_dataset, training_loader
from aim.train.objective import StageOneObjective
from aim.train.samples import predicted_vs_true

logger = logging.getLogger("aim")
LOSS_NAMES = ("loss", "video", "value", "action")


@dataclass
class TrainResult:
    bundle: ModelBundle  # the trained model (on this process's device; sharded under FSDP)
    run_dir: Path
    last_step: int
    checkpoint: Path | None  # the latest checkpoint


def train(config: TrainConfig, run_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train ``config`` into ``run_dir`` (from its latest checkpoint when ``resume``)."""
    run_dir = Path(run_dir)
    if config.data.root is None:
        raise ConfigError("data.root is required: the dataset to train on (e.g. data.root=PATH)")
    info = init_distributed(config.train.device)
    try:
        with attention_backend(config.train.attention_backend, source="train.attention_backend"):
            return _train(config, run_dir, resume, info)
    finally:
        shutdown()


def _train(config: TrainConfig, run_dir: Path, resume: bool, info: Distributed) -> TrainResult:
    t = config.train
    # Settings the dataset cannot serve are refused here, before the run directory is touched.
    reader = DatasetReader(config.data.root, cache_videos=config.data.cache_clips)
    torch.manual_seed(t.seed)  # identical initial weights on every process (FSDP shards them as built)
    bundle = build_bundle(config, reader)
    dataset = clip_dataset(bundle, reader, config)
    resume_from = prepare_run_dir(run_dir, resume, info)
    if info.is_main:
        save_config(config, run_dir / CONFIG_FILE)
    objective = StageOneObjective(bundle.model, bundle.text_encoder, bundle.structure, config.loss).to(info.device)
    bundle.tokenizer.to(info.device)
    strategy = resolve_strategy(config.parallel.strategy, info)
    wrapped = parallelize(objective, strategy, info)
    optimizer = make_optimizer(objective.parameters(), config.optim)
    scheduler = make_scheduler(optimizer, config.schedule, t.steps)
    start_step, checkpoint = 0, resume_from
    if resume_from is not None:
        start_step = load_checkpoint(resume_from, objective, optimizer, scheduler, info)["step"]
        if start_step >= t.steps:
            raise ConfigError(f"{resume_from} is at step {start_step}; raise train.steps (now {t.steps}) to go on")
    loader, order = training_loader(dataset, config, start_step, info)
    autocast = _autocast(info.device, t.precision)
    meta = bundle_metadata(bundle)
    monitor = Monitor(run_dir, info.is_main, start_step, t.steps, config.log.every, config.log.progress)
    if info.is_main:
        monitor.message(f"aim train: {len(dataset)} clips, {t.steps} steps of {t.batch_size} clips "
                        f"({info.world_size} process(es) x {order.accumulation} micro-batch(es) of "
                        f"{t.micro_batch_size}), {strategy}, {info.device}, run {run_dir}")
    batches = iter(loader)
    try:
        for step in range(start_step + 1, t.steps + 1):
            started = time.perf_counter()
            micro = _backward_micro_batches(step, batches, bundle, wrapped, order, autocast, t.seed, info.device)
            totals = info.mean(micro.losses).tolist()
            if not all(math.isfinite(v) for v in totals):
                raise NonFiniteLossError(_non_finite_message("loss", step, dict(zip(LOSS_NAMES, totals)), checkpoint))
            grad_norm = _clip_gradients(objective, config.optim.grad_clip)
            if not math.isfinite(grad_norm):
                raise NonFiniteLossError(_non_finite_message("gradient norm", step, {"grad_norm": grad_norm},
                                                             checkpoint))
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.perf_counter() - started
            monitor.step(step, {
                **{f"loss/{'total' if k == 'loss' else k}": v for k, v in zip(LOSS_NAMES, totals)},
                "grad_norm": grad_norm, "lr": lr,
                "throughput/tokens_per_s": micro.tokens_per_clip * t.batch_size / elapsed,
                "throughput/steps_per_s": 1.0 / elapsed,
                "time/data_wait_s": micro.data_wait, "time/data_wait_fraction": micro.data_wait / elapsed,
                "memory/peak_gib": _peak_memory_gib(info.device),
            })
            if config.log.sample_every and step % config.log.sample_every == 0:
                _log_samples(monitor, step, bundle, objective, strategy, micro.last, config, info)
            if step % config.checkpoint.every == 0 or step == t.steps:
                train_state = {"samples_seen": step * t.batch_size, "world_size": info.world_size}
                checkpoint = save_checkpoint(run_dir, step, objective, optimizer, scheduler, train_state, meta, info,
                                             config.checkpoint.keep)
    finally:
        monitor.close()
    return TrainResult(bundle, run_dir, t.steps, checkpoint)


@dataclass
class _MicroBatches:
    losses: torch.Tensor  # (len(LOSS_NAMES),) this process's losses, averaged over its micro-batches
    data_wait: float  # seconds spent waiting for the data loader
    tokens_per_clip: int
    last: tuple  # (video, value, actions, text prompts) of the last micro-batch, for sample images


def _backward_micro_batches(step: int, batches, bundle: ModelBundle, wrapped: torch.nn.Module, order, autocast,
                            seed: int, device: torch.device) -> _MicroBatches:
    """Forward and backward of this process's micro-batches of ``step``; gradients are reduced
    across processes on the last one only."""
    totals = torch.zeros(len(LOSS_NAMES), device=device)
    data_wait = 0.0
    for a in range(order.accumulation):
        fetch = time.perf_counter()
        batch = next(batches)
        data_wait += time.perf_counter() - fetch
        video, value, actions = clip_tensors(bundle, batch, device)
        generator = micro_batch_generator(seed, step - 1, order.slot(a))
        with gradient_sync(wrapped, a == order.accumulation - 1), autocast:
            prompts = batch_prompts(bundle, batch)
            losses = wrapped(video, value, actions, prompts, generator)
            (losses["loss"] / order.accumulation).backward()
        totals += torch.stack([losses[k].detach().float() for k in LOSS_NAMES]) / order.accumulation
    tokens = tokens_per_clip(bundle.structure, tuple(video.shape[-2:]), value is not None,
                             bundle.model.config.patch_size)
    return _MicroBatches(totals, data_wait, tokens, (video, value, actions, prompts))


def _autocast(device: torch.device, precision: str):
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _clip_gradients(module: torch.nn.Module, max_norm: float) -> float:
    parameters = [p for p in module.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm if max_norm > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):  # a DTensor under FSDP
        norm = norm.full_tensor()
    return float(norm)


def _peak_memory_gib(device: torch.device) -> float:
    """Peak GPU memory allocated by PyTorch, or on CPU the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _non_finite_message(what: str, step: int, values: dict, checkpoint: Path | None) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in values.items())
    kept = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet"
    return (f"aim train: the {what} is not finite at step {step} ({shown}); stopped without saving step "
            f"{step}: {kept}. Resume from it with a lower optim.lr or a larger optim.grad_clip.")


def _log_samples(monitor: Monitor, step: int, bundle: ModelBundle, objective: StageOneObjective, strategy: str,
                 micro_batch: tuple, config: TrainConfig, info: Distributed) -> None:
    """Every process takes part (FSDP gathers the root unit's weights for the rollout); the main one writes."""
    video, value, actions, prompts = micro_batch
    if strategy == "fsdp":
        objective.unshard()
    try:
        text = encode_text(objective.text_encoder, prompts[:1], info.device)
        generator = torch.Generator().manual_seed(config.train.seed + step)
        image = predicted_vs_true(bundle, video, value, actions, text, config.log.sample_steps, generator)
    finally:
        if strategy == "fsdp":
            objective.reshard()
    monitor.images(step, {"samples/true_vs_predicted_frames_then_value_maps": image})

"""`liv train`: one readable training loop, single process or torchrun/DDP.

    setup -> data -> model and optimiser -> resume -> steps (loss, backward, step, log, save) -> final model

Run ``liv train --help`` for every option; ``torchrun --nproc_per_node=N -m liv train ...`` for many
processes (each draws its share of every global batch; rank 0 logs and saves).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from liv.data.episodes import name_some
from liv.data.sampling import min_length
from liv.objectives import LIVWeights
from liv.training.batches import BatchStream, StreamSpec
from liv.training.checkpointing import (list_checkpoints, load_training_state, remove_partial_checkpoints,
                                        save_checkpoint)
from liv.training.config import TrainConfig
from liv.training.distributed import init_distributed, shutdown_distributed
from liv.training.divergence import NonFiniteWatch, describe_divergence, must_read_back
from liv.training.objective import Objective
from liv.training.speed import compile_towers, learning_rate, make_optimizer, prepare_for_training


class TrainingError(RuntimeError):
    """Training cannot go on (bad data, a diverged loss, ...); the message says why and what was kept."""


def _initial_model(config: TrainConfig):
    import liv
    from liv.models.presets import PRESETS

    if config.init in PRESETS:
        return liv.create(config.init, seed=config.seed)
    return liv.load(config.init)


def _open_data(path: Path, config: TrainConfig, check: bool):
    """Open ``path`` with the run's format options; with ``check``, refuse it if the data check finds errors
    (episodes too short to sample are only warnings)."""
    from liv.data.open import open_dataset

    dataset = open_dataset(path, format=config.data_format, camera=config.camera)
    if check:
        from liv.data.check import check_dataset

        # Too-short episodes are warnings: BatchStream leaves them out and training names them.
        report = check_dataset(dataset, decode_frames=1, min_frames=min_length(config.sample_mode))
        if report.errors:
            shown = "\n  ".join(str(e) for e in report.errors[:20])
            raise TrainingError(f"{path}: {len(report.errors)} data problem(s); fix them or run `liv data check "
                                f"{path}` for the full list:\n  {shown}")
    return dataset


def _log(run_dir: Path, record: dict, writer) -> None:
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if writer is not None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                writer.add_scalar(f"train/{key}", value, record["step"])


def train(config: TrainConfig) -> Path:
    """Run training as configured; returns the directory of the final model (``OUT/model``).

    Raises TrainingError for bad data and for a non-finite loss (the last good checkpoint is kept).
    """
    # ---------------------------------------------------------------- setup
    info, device = init_distributed(config.device)
    run_dir = config.out
    try:
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_checkpoints(run_dir)
        # ------------------------------------------------------------ model, optimiser, resume
        model = _initial_model(config).to(device)
        prepare_for_training(model)
        model.clip.set_grad_checkpointing(config.grad_checkpointing)
        if config.compile:
            compile_towers(model)
        objective = Objective(config.objective, LIVWeights(config.infonce_weight, config.vip_image_weight,
                                                           config.vip_text_weight, config.num_negatives),
                              config.gamma, config.vip_l1, config.vip_l2, config.seed,
                              ignore_same_text=config.infonce_same_text == "ignore")
        if not objective.uses_text:  # the text tower gets no gradient: freeze it (DDP needs every param used)
            for name, p in model.clip.named_parameters():
                if not name.startswith("visual."):
                    p.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, config.lr, config.betas, config.adam_eps, config.weight_decay)
        start_step = 0
        checkpoints = list_checkpoints(run_dir) if config.resume else []
        if config.resume and not checkpoints and info.is_main:
            print(f"liv train: no checkpoint in {run_dir}/checkpoints; starting from step 0")
        if checkpoints:
            import liv

            resumed = liv.load(checkpoints[-1])
            model.clip.load_state_dict(resumed.clip.state_dict())
            state = load_training_state(checkpoints[-1])
            optimizer.load_state_dict(state["optimizer"])
            start_step = int(state["step"])
            if info.is_main:
                print(f"liv train: resumed from {checkpoints[-1]} at step {start_step}")
        model.config.provenance = {**model.config.provenance, "trained_by": "liv train", "objective": config.objective,
                                   "data": str(config.data)}
        ddp = DistributedDataParallel(model) if info.world_size > 1 else model

        # ------------------------------------------------------------ data
        dataset = _open_data(config.data, config, check=config.check_data)
        spec = StreamSpec(resolution=model.image_resolution, slots=objective.slots, mode=config.sample_mode,
                          alpha=config.text_goal_alpha, degenerate_prob=config.degenerate_prob,
                          augment=config.augment == "rrc", crop_scale=config.crop_scale,
                          antialias=model.config.antialias,
                          context_length=model.config.clip.context_length if objective.uses_text else 0)
        try:
            stream = BatchStream(dataset.episodes, spec, config.seed, config.batch_size, start_step, config.steps,
                                 info.rank, info.world_size)
        except ValueError as e:  # no episode long enough to sample, or a batch the processes cannot share
            raise TrainingError(f"{config.data}: {e}") from None
        loader = DataLoader(stream, batch_size=None, num_workers=config.num_workers,
                            pin_memory=device.type == "cuda", prefetch_factor=4 if config.num_workers else None,
                            persistent_workers=False)
        eval_dataset = None
        if config.eval_every and info.is_main:
            eval_dataset = _open_data(config.eval_data, config, check=False)

        # ------------------------------------------------------------ logging
        writer, bar = None, None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter
            from tqdm import tqdm

            writer = SummaryWriter(str(run_dir / "tensorboard"))
            bar = tqdm(total=config.steps, initial=start_step, disable=not config.progress, unit="step",
                       dynamic_ncols=True, desc="liv train")
            if stream.skipped:
                print(f"liv train: leaving out {stream.skipped} of {len(dataset.episodes)} episodes, too short for "
                      f"sampling mode '{spec.mode}' (fewer than {min_length(spec.mode)} frames): "
                      f"{name_some(stream.skipped_sources)}")
            print(f"liv train: {len(stream.episodes)} episodes, "
                  f"{model.num_parameters() / 1e6:.1f}M parameters, objective {config.objective}, "
                  f"{info.world_size} process(es) on {device}")
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if config.bf16 and device.type == "cuda"
                    else contextlib.nullcontext())

        # ------------------------------------------------------------ steps
        _set_train_mode(model, config.batchnorm)
        tick, samples_since = time.perf_counter(), 0
        step = start_step
        watch = NonFiniteWatch(device)
        for batch in loader:
            if batch["step"] != step:
                raise TrainingError(f"internal error: batch of step {batch['step']} arrived at step {step}")
            with autocast:
                loss, metrics = objective(ddp, batch, step)
            watch.update(loss, step)
            bad_step = watch.first_bad(read=must_read_back(step, config.steps, config.log_every, config.save_every,
                                                           config.eval_every))
            if bad_step is not None:
                raise TrainingError(describe_divergence(run_dir, bad_step, step, metrics) if info.is_main
                                    else f"step {bad_step}: loss diverged")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config.lr, config.steps, config.lr_schedule, config.warmup_steps)
            optimizer.step()
            step += 1
            samples_since += config.batch_size
            if info.is_main and (step % config.log_every == 0 or step == config.steps):
                elapsed = time.perf_counter() - tick
                record = {"step": step, **{k: round(v.item(), 7) for k, v in metrics.items()},
                          "lr": optimizer.param_groups[0]["lr"],
                          "samples_per_s": round(samples_since / max(elapsed, 1e-9), 2)}
                _log(run_dir, record, writer)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k not in ("step", "lr")}, refresh=False)
                tick, samples_since = time.perf_counter(), 0
            if bar is not None:
                bar.update(1)
            if info.is_main and config.save_every and step % config.save_every == 0 and step < config.steps:
                save_checkpoint(run_dir, step, model, optimizer, config.to_dict(), config.keep_last)
            if eval_dataset is not None and step % config.eval_every == 0:
                _evaluate(model, eval_dataset, step, run_dir, writer)
                _set_train_mode(model, config.batchnorm)

        # ------------------------------------------------------------ final model
        if info.world_size > 1:
            _check_ranks_agree(model, info)
        final = run_dir / "model"
        if info.is_main:
            save_checkpoint(run_dir, step, model, optimizer, config.to_dict(), config.keep_last)
            model.eval().save(final)
            if bar is not None:
                bar.close()
            writer.close()
            print(f"liv train: done at step {step}; model in {final}")
        return final
    finally:
        shutdown_distributed()


def _check_ranks_agree(model, info) -> None:
    """Raise if the processes' parameters drifted apart (DDP keeps them equal; this proves it)."""
    import torch.distributed as dist

    fingerprint = torch.stack([p.detach().double().sum() for p in model.parameters()])
    copies = [torch.empty_like(fingerprint) for _ in range(info.world_size)]
    dist.all_gather(copies, fingerprint)
    if any(not torch.equal(c, copies[0]) for c in copies):
        raise TrainingError("parameters differ between processes: the distributed run is inconsistent")
    if info.is_main:
        print(f"liv train: parameters identical on all {info.world_size} processes")


def _set_train_mode(model, batchnorm: str) -> None:
    model.train()
    if batchnorm == "frozen":  # running statistics; BN affine parameters still learn
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()


def _evaluate(model, dataset, step: int, run_dir: Path, writer) -> None:
    """Reward-quality metrics on held-out episodes, logged as eval/* scalars and to eval.jsonl."""
    from liv.eval.metrics import evaluate_dataset

    result = evaluate_dataset(model, dataset)
    scalars: dict[str, float] = {}

    def flatten(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                flatten(f"{prefix}/{key}" if prefix else key, inner)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            scalars[prefix] = float(value)

    flatten("", result.get("overall", {}))
    with open(run_dir / "eval.jsonl", "a") as f:
        f.write(json.dumps({"step": step, **scalars}) + "\n")
    if writer is not None:
        for key, value in scalars.items():
            writer.add_scalar(f"eval/{key}", value, step)

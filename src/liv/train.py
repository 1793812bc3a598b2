"""`liv train`: one readable training loop, single process or torchrun/DDP.

    setup -> data -> model and optimiser -> resume -> steps (loss, backward, step, log, save) -> final model

Run ``liv train --help`` for every option; ``torchrun --nproc_per_node=N -m liv train ...`` for many
processes (each draws its share of every global batch; rank 0 logs and saves).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from liv.data.episodes import name_some
from liv.data.sampling import min_length
from liv.objectives import LIVWeights
from liv.training.bad_samples import BadSamples
from liv.training.batches import BatchStream, StreamSpec, few_episodes_warning
from liv.training.checkpointing import list_checkpoints, load_training_state, save_checkpoint, save_final_model
from liv.training.config import TrainConfig
from liv.training.distributed import init_distributed, shutdown_distributed
from liv.training.divergence import NonFiniteWatch, describe_divergence, must_read_back
from liv.training.errors import TrainingError
from liv.training.logs import DATA_ERRORS, RunLogs, trim_logs
from liv.training.objective import Objective
from liv.training.resume import check_resume, finished, write_settings
from liv.training.run_dir import RunDir, check_out
from liv.training.speed import compile_towers, learning_rate, make_optimizer, prepare_for_training


def _initial_model(config: TrainConfig):
    import liv

    return liv.load(config.init, seed=config.seed)  # a preset: random weights from the run's seed


def _check_init(config: TrainConfig) -> None:
    """Resolve ``--init`` (a named model is downloaded here) and read its header or config; raises
    CheckpointError naming it, before the run directory is touched."""
    from liv.loading import check_model

    check_model(config.init)


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


def _provenance(previous: dict, config: TrainConfig) -> dict:
    """The trained model's provenance: the initial model's, plus this run's objective and data, and, for
    simulated data (`liv sim generate`, the demo), how its frames were rendered: `liv plan` and `liv bc`
    render rollouts that way unless told otherwise."""
    from liv.sim.generate import rendering_settings

    provenance = {**previous, "trained_by": "liv train", "objective": config.objective, "data": str(config.data)}
    provenance.pop("rendering", None)  # the init model's frames are not this run's
    rendering = rendering_settings(config.data)
    if rendering is not None:
        provenance["rendering"] = rendering
    return provenance


def _say(message: str, file=None) -> None:
    """Print a line whole on stdout (or ``file``) without breaking the progress bar: the bar (on stderr)
    is cleared first and drawn again after the line is flushed, so the two never share a line."""
    from tqdm import tqdm

    file = file or sys.stdout
    with tqdm.external_write_mode(file=file):
        print(message, file=file, flush=True)


def _kept(run: RunDir) -> str:
    kept = list_checkpoints(run.current)
    return f"Last good checkpoint: {kept[-1] if kept else 'none'}"


def train(config: TrainConfig) -> Path:
    """Run training as configured; returns the directory of the final model (``OUT/model``).

    With ``config.resume``, ``config`` must agree with the run's stored settings but for
    ``liv.training.resume.MAY_CHANGE`` (or set ``resume_override``); a run that has finished at
    ``config.steps`` is left as it is.

    Raises ValueError for settings a resume refuses (see liv.training.resume.check_resume) and for an --out
    that is a file, or holds a run while neither --resume nor --overwrite is given; CheckpointError for an
    --init that cannot be read or downloaded (before OUT is touched); TrainingError (the last good
    checkpoint is kept) for: bad data before the first step; more unreadable samples than
    --max-bad-samples; a non-finite loss.
    """
    # ---------------------------------------------------------------- setup
    check_out(config.out, config.resume, config.overwrite)  # every process, before any of them writes
    if config.resume:
        check_resume(config)
    _check_init(config)  # a model that cannot be had (not downloadable now, unreadable) leaves no run behind
    info, device = init_distributed(config.device)
    run = RunDir(config.out)
    logs = None
    try:
        if info.is_main:
            run = RunDir.prepare(config.out, config.overwrite)
            for note in run.notes:
                _say(f"liv train: {note}")
        if config.resume and finished(run.root, config.steps):
            if info.is_main:
                _say(f"liv train: the run in {run.root} is finished: it reached its last step, {config.steps}, "
                     f"and its model is in {run.root / 'model'}; nothing to do (--resume --steps N with N > "
                     f"{config.steps} trains it further)")
            return run.root / "model"
        if info.is_main:
            write_settings(run.current, config)
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
        start_step, bad_count = 0, 0
        checkpoints = list_checkpoints(run.root) if config.resume else []
        if config.resume and not checkpoints and info.is_main:
            _say(f"liv train: no checkpoint in {run.root}/checkpoints; starting from step 0 of {config.steps}")
        if checkpoints:
            import liv

            resumed = liv.load(checkpoints[-1])
            model.clip.load_state_dict(resumed.clip.state_dict())
            state = load_training_state(checkpoints[-1])
            optimizer.load_state_dict(state["optimizer"])
            start_step, bad_count = int(state["step"]), int(state["bad_samples"])
            if info.is_main:
                _say(f"liv train: resumed from {checkpoints[-1]} at step {start_step} of {config.steps}")
        if config.resume and info.is_main:
            trim_logs(run.root, start_step)  # the steps after the checkpoint are logged again
        model.config.provenance = _provenance(model.config.provenance, config)
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
                                 info.rank, info.world_size, max_bad=config.max_bad_samples)
        except ValueError as e:  # no episode long enough to sample, or a batch the processes cannot share
            raise TrainingError(f"{config.data}: {e}") from None
        loader = DataLoader(stream, batch_size=None, num_workers=config.num_workers,
                            pin_memory=device.type == "cuda", prefetch_factor=4 if config.num_workers else None,
                            persistent_workers=False)
        eval_dataset = None
        if config.eval_every and info.is_main:
            eval_dataset = _open_data(config.eval_data, config, check=False)

        # ------------------------------------------------------------ logging
        bar = None
        if info.is_main:  # the header lines, each whole, before the bar's first drawing
            from tqdm import tqdm

            logs = RunLogs(run.current)
            if stream.skipped:
                _say(f"liv train: leaving out {stream.skipped} of {len(dataset.episodes)} episodes, too short for "
                     f"sampling mode '{spec.mode}' (fewer than {min_length(spec.mode)} frames): "
                     f"{name_some(stream.skipped_sources)}")
            _say(f"liv train: {len(stream.episodes)} episodes, "
                 f"{model.num_parameters() / 1e6:.1f}M parameters, objective {config.objective}, "
                 f"{info.world_size} process(es) on {device}")
            warning = few_episodes_warning(len(stream.episodes), config.batch_size, info.world_size,
                                           infonce=config.infonce_same_text == "negatives" and (
                                               config.objective == "clip"
                                               or (config.objective == "liv" and config.infonce_weight > 0)))
            if warning:
                _say(f"liv train: warning: {warning}", file=sys.stderr)
            bar = tqdm(total=config.steps, initial=start_step, disable=not config.progress, unit="step",
                       dynamic_ncols=True, desc="liv train")
        bad = BadSamples(config.max_bad_samples, bad_count, logs.data_errors if logs else None, _say,
                         lambda: str((logs.directory if logs else run.root) / DATA_ERRORS), info.world_size)
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if config.bf16 and device.type == "cuda"
                    else contextlib.nullcontext())

        def save(step: int) -> None:
            model.config.provenance["step"] = step  # in OUT/model, tells a later --resume where the run ended
            save_checkpoint(run.current, step, model, optimizer, config.to_dict(), config.keep_last, bad.count)
            if run.replacing:
                logs.close()  # TensorBoard's open file must not move under its writer
                run.commit()
                logs.move_to(run.root)
                _say(f"liv train: this run's first checkpoint is written; it replaced the previous run in {run.root}")

        # ------------------------------------------------------------ steps
        _set_train_mode(model, config.batchnorm)
        tick, samples_since = time.perf_counter(), 0
        step = start_step
        watch = NonFiniteWatch(device)
        for batch in loader:
            if batch["step"] != step:
                raise TrainingError(f"internal error: batch of step {batch['step']} arrived at step {step}")
            if "error" in batch:  # a DataError in a loader worker, sent as its message
                raise TrainingError(f"step {step}: {batch['error']}; training stopped. {_kept(run)}.")
            read_back = must_read_back(step, config.steps, config.log_every, config.save_every, config.eval_every)
            stop = bad.add(batch, exchange=read_back)
            if stop is not None:
                raise TrainingError(f"{stop} {_kept(run)} (fix or remove the files, or raise --max-bad-samples, "
                                    f"then --resume).")
            with autocast:
                loss, metrics = objective(ddp, batch, step)
            watch.update(loss, step)
            bad_step = watch.first_bad(read=read_back)
            if bad_step is not None:
                raise TrainingError(describe_divergence(run.current, bad_step, step, metrics) if info.is_main
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
                logs.metrics(record)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k not in ("step", "lr")}, refresh=False)
                tick, samples_since = time.perf_counter(), 0
            if bar is not None:
                bar.update(1)
            if info.is_main and config.save_every and step % config.save_every == 0 and step < config.steps:
                save(step)
            if eval_dataset is not None and step % config.eval_every == 0:
                _evaluate(model, eval_dataset, step, logs)
                _set_train_mode(model, config.batchnorm)

        # ------------------------------------------------------------ final model
        if info.world_size > 1:
            _check_ranks_agree(model, info)
        final = run.root / "model"
        if info.is_main:
            if step > start_step:  # else the resumed checkpoint is this step's: only the final model is missing
                save(step)
            model.config.provenance["step"] = step
            save_final_model(run.root, model.eval())
            if bar is not None:
                bar.close()
            if bad.count:
                _say(f"liv train: {bad.count} unreadable sample(s) left out and replaced; each is logged in "
                     f"{run.root / DATA_ERRORS}")
            _say(f"liv train: done at step {step}; model in {final}")
        return final
    except TrainingError as e:
        if run.replacing:  # "--resume" would continue the old run, which is still in place
            raise TrainingError(f"{e} This --overwrite run stopped before its first checkpoint: the run in "
                                f"{run.root} is as it was; use --overwrite again to start over.") from None
        raise
    finally:
        if logs is not None:
            logs.close()
        if run.replacing:  # stopped before its first checkpoint: drop an empty staging directory, keep logs
            with contextlib.suppress(OSError):
                run.current.rmdir()
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
        _say(f"liv train: parameters identical on all {info.world_size} processes")


def _set_train_mode(model, batchnorm: str) -> None:
    model.train()
    if batchnorm == "frozen":  # running statistics; BN affine parameters still learn
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()


def _evaluate(model, dataset, step: int, logs: RunLogs) -> None:
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
    logs.evaluation(step, scalars)

"""`TrainConfig`: every setting of a training run, with the paper's fine-tuning and pre-training presets.

Defaults are the fine-tuning column of the paper's Table 3 with the reference implementation's
optimiser (DESIGN.md section 3); ``TRAIN_PRESETS["pretrain"]`` changes what pre-training changes.
The command line (`liv train --help`) is generated from the field docstrings below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from liv.cli_args import check_fields
from liv.model_names import model_name_problem
from liv.models.devices import device_or_auto_problem

Objective = Literal["liv", "vip", "clip", "vip-i"]


@dataclass
class TrainConfig:
    """Train or fine-tune a LIV model on text-annotated videos."""

    data: Path = field(metadata={"path": "exists"})
    """Training data: a frame-folder or video manifest, a LeRobot dataset root, or a video file."""
    out: Path
    """Run directory: checkpoints/, tensorboard/, metrics.jsonl and the final model/ go here. One that already
    holds a run needs --resume or --overwrite."""
    preset: Literal["finetune", "pretrain"] = "finetune"
    """Paper settings to start from (Table 3); options given explicitly override them."""
    init: str = field(default="clip-tiny", metadata={"check": model_name_problem})
    """Initial weights: any file liv.load reads, or a model name (a preset such as clip-tiny or clip-rn50 means
    random weights from --seed)."""
    objective: Objective = "liv"
    """liv (InfoNCE + VIP), vip (image VIP with -L2, original VIP), clip (InfoNCE only), vip-i (VIP on image goals)."""
    data_format: Literal["auto", "frames", "video", "lerobot"] = "auto"
    """Format of --data: auto, frames, video, lerobot."""
    camera: str | None = None
    """Camera key for LeRobot datasets with several cameras."""
    sample_mode: Literal["episode", "segment"] = "episode"
    """episode: o_0 / goal = first / last frame (fine-tuning); segment: random sub-segments (pre-training)."""
    text_goal_alpha: float = field(default=0.95, metadata={"gt": 0, "max": 1})
    """In segment mode the text-goal frame is drawn from the last (1 - alpha) of the episode."""
    degenerate_prob: float = field(default=0.0, metadata={"min": 0, "max": 1})
    """Probability of a degenerate sample (every frame the goal frame; paper Proposition 1)."""
    infonce_weight: float = field(default=1.0, metadata={"min": 0})
    """Weight of InfoNCE between text-goal frames and their texts (objective liv)."""
    infonce_same_text: Literal["negatives", "ignore"] = "negatives"
    """Samples of one batch with identical texts: negatives of each other in InfoNCE (the reference's), or
    ignore: left out of each other's softmax (few distinct instructions, e.g. robot tasks, repeat often)."""
    vip_image_weight: float = field(default=1.0, metadata={"min": 0})
    """Weight of VIP with image goals (objectives liv, vip-i)."""
    vip_text_weight: float = field(default=0.0, metadata={"min": 0})
    """Weight of VIP with text goals, VIP-L (objective liv; pre-training uses 1)."""
    num_negatives: int = field(default=0, metadata={"min": 0})
    """Shuffled negative pairs added to each VIP term (pre-training uses 3)."""
    gamma: float = field(default=0.98, metadata={"gt": 0, "lt": 1})
    """Discount factor; the value is cosine / (1 - gamma)."""
    vip_l1: float = field(default=0.0, metadata={"min": 0})
    """L1 penalty on image embeddings (objective vip, as the original VIP)."""
    vip_l2: float = field(default=0.0, metadata={"min": 0})
    """L2 penalty on image embeddings (objective vip)."""
    lr: float = field(default=1e-5, metadata={"gt": 0})
    """Adam learning rate (the peak, with a schedule)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """constant (the reference's), or cosine: decay from lr after the warm-up towards 0 at the end."""
    warmup_steps: int = field(default=0, metadata={"min": 0})
    """Steps of linear warm-up from 0 to lr (either schedule)."""
    betas: tuple[float, float] = field(default=(0.9, 0.98), metadata={"min": 0, "lt": 1})
    """Adam betas."""
    adam_eps: float = field(default=1e-6, metadata={"gt": 0})
    """Adam epsilon."""
    weight_decay: float = field(default=1e-3, metadata={"min": 0})
    """L2 weight decay inside Adam (torch Adam, not AdamW, as the reference)."""
    batch_size: int = field(default=64, metadata={"min": 2})
    """Global batch size (samples per step over all processes); at least 2, as InfoNCE and VIP average over
    the batch."""
    steps: int = field(default=10_000, metadata={"min": 1})
    """Number of optimiser steps."""
    augment: Literal["rrc", "none"] = "rrc"
    """rrc: one RandomResizedCrop shared by the 5 frames of a sample (the reference's); none: centre crop."""
    crop_scale: tuple[float, float] = field(default=(0.2, 1.0), metadata={"gt": 0, "max": 1})
    """Area range of the random resized crop."""
    batchnorm: Literal["train", "frozen"] = "train"
    """train: batch statistics (the reference); frozen: running statistics, affine parameters still learn."""
    grad_checkpointing: bool = False
    """Recompute activations in the backward pass: bigger batches in the same memory, ~1 more forward of compute."""
    seed: int = field(default=0, metadata={"min": 0})
    """Seed of initialisation and data sampling; the same seed gives the same run."""
    num_workers: int = field(default=2, metadata={"min": 0})
    """DataLoader worker processes decoding frames (0 decodes in the training process)."""
    device: str = field(default="auto", metadata={"check": device_or_auto_problem})
    """auto (cuda if available), cpu, cuda, cuda:N."""
    bf16: bool = False
    """bf16 autocast on CUDA (fp32 master weights); ignored on CPU, where bf16 is slow."""
    compile: bool = False
    """torch.compile both towers (a one-off compilation at the first steps; see bench/README.md for when
    it pays). Checkpoints are unaffected."""
    log_every: int = field(default=10, metadata={"min": 1})
    """Steps between log lines (metrics.jsonl, TensorBoard, progress bar)."""
    save_every: int = field(default=1000, metadata={"min": 0})
    """Steps between checkpoints (0: only at the end)."""
    keep_last: int = field(default=3, metadata={"min": 1})
    """Checkpoints to keep (older ones are deleted after a newer one is safely written)."""
    resume: bool = False
    """Continue the run in --out from its newest complete checkpoint, with its stored settings
    (OUT/train_config.json) as the defaults: --data D --out OUT --resume is enough. Options given again with
    other values are refused, except --steps (to extend a run), --save-every, --keep-last, --log-every,
    --eval-data, --eval-every, --max-bad-samples, --check-data, --device, --num-workers, --bf16, --compile,
    --grad-checkpointing and --progress. A finished run is left as it is."""
    resume_override: bool = False
    """With --resume: let any option given differ from the run's stored settings (the run goes on with them)."""
    overwrite: bool = False
    """Start a new run in an --out that holds one (without it, or --resume, such an --out is refused). The
    old run stays untouched until the new one has written its first checkpoint, which then replaces it;
    until then the new run writes into OUT/.liv-new-run."""
    max_bad_samples: int = field(default=10_000, metadata={"min": 0})
    """Samples whose frames cannot be read (corrupt, truncated or missing file, a frame of another size) are
    left out, replaced by another draw (the same one on --resume) and logged to OUT/data_errors.jsonl;
    training stops, keeping its last checkpoint, once more than this many were (0: at the first). The
    default lets a few bad files through a long run: a bad first or last frame spoils every sample of its
    episode, about steps x batch / episodes of them (1,500 for the pretrain preset on EPIC-KITCHENS' 67k
    segments), while data broken wholesale fails about a batch a step and so stops within 10,000 /
    batch_size steps."""
    check_data: bool = True
    """Check the data (files exist, counts agree, a frame per episode decodes) before the first step."""
    eval_data: Path | None = field(default=None, metadata={"path": "exists"})
    """Held-out episodes to evaluate reward quality on during training (optional)."""
    eval_every: int = field(default=0, metadata={"min": 0})
    """Steps between evaluations on --eval-data (0: never)."""
    progress: bool = True
    """Show a progress bar."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "finetune": {},
    "pretrain": {"sample_mode": "segment", "vip_text_weight": 1.0, "num_negatives": 3, "batch_size": 512,
                 "steps": 200_000},
}
"""Field values each preset sets, on top of the dataclass defaults."""


def build_config(given: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from explicitly given fields: preset values first, explicit values on top."""
    preset = given.get("preset", "finetune")
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {preset!r}; choose one of {sorted(TRAIN_PRESETS)}")
    values = {**TRAIN_PRESETS[preset], **given}
    for key in ("data", "out", "eval_data"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    for key in ("betas", "crop_scale"):
        if key in values:
            values[key] = tuple(values[key])
    config = TrainConfig(**values)
    validate(config)
    return config


def validate(c: TrainConfig) -> None:
    """Raise ValueError with the field name for settings that cannot work: a value outside the range its
    field declares (metadata, checked by liv.cli_args.check_fields), or settings that contradict each other."""
    check_fields(c)
    checks = [
        (c.warmup_steps < c.steps, "warmup_steps must be < steps"),
        (c.crop_scale[0] <= c.crop_scale[1], "crop_scale must satisfy low <= high"),
        (c.eval_every == 0 or c.eval_data is not None, "eval_every needs eval_data"),
        (not (c.resume and c.overwrite), "resume and overwrite exclude each other: --resume continues the run "
                                         "in --out, --overwrite starts a new one"),
        (c.resume or not c.resume_override, "resume_override needs resume: it lets a resumed run change its "
                                            "stored settings"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


__all__ = ["TrainConfig", "TRAIN_PRESETS", "build_config", "validate"]

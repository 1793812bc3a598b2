"""`liv reward`, `liv evaluate` and `liv compare`: option dataclasses and the functions that run them."""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from liv.cli_args import check_fields, check_path
from liv.data.episodes import DataError
from liv.eval.labels import mark_presets, model_labels
from liv.model_names import model_name_problem
from liv.models.devices import device_problem

if TYPE_CHECKING:  # numpy, torch, PIL: imported where used, so that `liv reward --help` starts fast
    import numpy as np

    from liv.data.episodes import Episode, EpisodeDataset
    from liv.model import LIVModel

DataFormat = Literal["auto", "frames", "video", "lerobot"]


@dataclass
class RewardArgs:
    """Score frames against goals: per-frame similarity (value) and LIV reward, as CSV, plot and animation."""

    model: str = field(metadata={"check": model_name_problem})
    """Model to use: a path (any format `liv info` reads) or a model name."""
    out: Path = field(metadata={"path": "out"})
    """Output directory (rewards.csv, rewards.png, rewards.mp4/.gif); with --data, the output .parquet file."""
    input: Path | None = field(default=None, metadata={"positional": True, "path": "exists"})
    """A video file, a folder of images, or a dataset (manifest.csv or its folder, LeRobot root; see --episode)."""
    goal: list[str] = field(default_factory=list)
    """Text goals (repeat the option). Default for a dataset episode: its own text."""
    goal_image: list[Path] = field(default_factory=list, metadata={"path": "file"})
    """Image goals: PNG/JPEG files (repeat the option)."""
    strict_text: bool = False
    """Refuse (exit 2) a text longer than the model's context (77 tokens) instead of cutting it with a warning."""
    episode: int = field(default=0, metadata={"min": 0})
    """Which episode of a dataset INPUT to score (0-based)."""
    animate: bool = False
    """Also write an animation of the video beside its growing curves."""
    animation_format: Literal["mp4", "gif"] = "mp4"
    """Animation container: mp4 (H.264, streamed) or gif (held in memory; for short clips)."""
    data: Path | None = field(default=None, metadata={"path": "exists"})
    """Instead of INPUT: score every episode of this dataset against its own text (and the --goal texts and
    --goal-image images) and write a tidy parquet to --out, one row per episode, goal and frame: episode, task
    (its text), frame, goal, value, reward, and where the episode came from: source (its video file, frame
    folder or LeRobot file and episode), manifest and manifest_line (the file listing it and the 1-based line
    there, header = line 1), episode_index (LeRobot's own; null for other formats)."""
    success_thresholds: Path | None = field(default=None, metadata={"path": "file"})
    """A success_thresholds.json from `liv evaluate`: rewards.csv gains a success_<goal> column (1 where the
    frame's similarity with a text goal is at or above that text's threshold)."""
    progress_parquet: Path | None = field(default=None, metadata={"path": "out_file"})
    """With --data (a LeRobot dataset): also write per-frame progress for LeRobot's reward-aligned BC here:
    index, episode_index, frame_index, progress_dense (the episode's text-goal value min-max normalised to
    [0, 1]; liv.eval.progress)."""
    scale: Literal["similarity", "value"] = "similarity"
    """similarity: S = cos(phi(o), goal) in [-1, 1]; value: S / (1 - gamma), the units of LIV's value."""
    gamma: float = field(default=0.98, metadata={"gt": 0, "lt": 1})
    """Discount for --scale value."""
    fps: float | None = field(default=None, metadata={"gt": 0})
    """Frame rate for time_s and the animation when the data has none (frame folders; default 30). Given, it
    also replaces a video's own timestamps in time_s (frame / fps)."""
    format: DataFormat = "auto"
    """Dataset format of INPUT / --data: auto, frames, video or lerobot."""
    camera: str | None = None
    """Camera (image key) of a LeRobot dataset."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device, e.g. cpu or cuda:0."""
    batch_size: int = field(default=64, metadata={"min": 1})
    """Frames per image-encoder pass."""


@dataclass
class EvaluateArgs:
    """Measure reward quality on a dataset (VOC, negative rate, language confusion matrix, AUROC): metrics.json
    and a self-contained report.html."""

    model: str = field(metadata={"check": model_name_problem})
    """Model to evaluate: a path (any format `liv info` reads) or a model name."""
    data: Path = field(metadata={"path": "exists"})
    """Dataset: manifest.csv (or its folder) of frame folders or videos, or a LeRobot root."""
    out: Path = field(metadata={"path": "out_dir"})
    """Output directory for metrics.json and report.html."""
    extra_goal: list[str] = field(default_factory=list)
    """Distractor texts added as columns of the confusion matrix (e.g. "do nothing")."""
    strict_text: bool = False
    """Refuse (exit 2) a text longer than the model's context (77 tokens) instead of cutting it with a warning."""
    max_episodes_per_task: int | None = field(default=None, metadata={"min": 1})
    """Evaluate at most this many episodes of each task and outcome (the first N successes, N failures and N
    without a flag, so AUROC survives); what is dropped is said on stderr and in metrics.json; default all."""
    episodes_per_task: int = field(default=3, metadata={"min": 0})
    """Episodes per task whose curves the report plots."""
    format: DataFormat = "auto"
    """Dataset format: auto, frames, video or lerobot."""
    camera: str | None = None
    """Camera (image key) of a LeRobot dataset."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device, e.g. cpu or cuda:0."""
    batch_size: int = field(default=64, metadata={"min": 1})
    """Frames per image-encoder pass."""
    calibrate_on: Path | None = field(default=None, metadata={"path": "exists"})
    """Labelled episodes (same tasks; read with the same --format and --camera) to choose the success
    thresholds on; then every labelled episode of --data measures precision, recall and F1. Default: a
    seeded half of --data's labelled episodes, the other half measuring them (liv.eval.detection)."""
    calibration_seed: int = field(default=0, metadata={"min": 0})
    """Seed of the half split when --calibrate-on is not given."""
    card: bool = False
    """Also put the figures in the model card (README.md) of the evaluated model folder, for publishing it."""


@dataclass
class CompareArgs:
    """Evaluate several models on one dataset and put their metrics side by side (compare.json, compare.html)."""

    models: list[str] = field(metadata={"check": model_name_problem})
    """Models to compare: paths (any format `liv info` reads) or model names; labelled by run (runs/ft/model
    -> ft) or by name."""
    data: Path = field(metadata={"path": "exists"})
    """Dataset: manifest.csv (or its folder) of frame folders or videos, or a LeRobot root."""
    out: Path = field(metadata={"path": "out_dir"})
    """Output directory for compare.json and compare.html."""
    extra_goal: list[str] = field(default_factory=list)
    """Distractor texts added as columns of the confusion matrix."""
    strict_text: bool = False
    """Refuse (exit 2) a text longer than the model's context (77 tokens) instead of cutting it with a warning."""
    max_episodes_per_task: int | None = field(default=None, metadata={"min": 1})
    """Evaluate at most this many episodes of each task and outcome (as `liv evaluate`); default all."""
    format: DataFormat = "auto"
    """Dataset format: auto, frames, video or lerobot."""
    camera: str | None = None
    """Camera (image key) of a LeRobot dataset."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device, e.g. cpu or cuda:0."""
    batch_size: int = field(default=64, metadata={"min": 1})
    """Frames per image-encoder pass."""


# ------------------------------------------------------------------------------------------- helpers
def slug(text: str, limit: int = 48) -> str:
    """A goal text or file name as a column-friendly label: lower case, [a-z0-9_] only, at most ``limit``."""
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit].rstrip("_")
    return s or "goal"


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}_{seen[label]}")
    return out


def _is_single(path: Path) -> bool:
    """A lone video file or a plain folder of images (no manifest, not LeRobot): one episode, no text."""
    from liv.data.manifests import MANIFEST_NAME
    from liv.data.video_files import VIDEO_SUFFIXES

    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    return path.is_dir() and not (path / MANIFEST_NAME).exists() and not (path / "meta" / "info.json").exists()


def _fps(episode: Episode, given: float | None) -> float:
    """Frame rate: --fps, else the data's own (LeRobot meta, video stream, manifest column), else 30."""
    if given is not None:
        return float(given)
    candidates = [episode.meta.get("fps"), getattr(episode.frames, "fps", None)]
    for c in candidates:
        try:
            if c is not None and float(c) > 0:
                return float(c)
        except (TypeError, ValueError):
            continue
    return 30.0


def _frame_times(episode: Episode, fps: float, given: bool) -> np.ndarray:
    """(T,) seconds of each frame from the first: the file's own timestamps (a variable frame rate shows),
    else frame / fps; ``given`` (--fps) always counts frames at that rate."""
    import numpy as np

    times = getattr(episode.frames, "times", None)
    if not given and callable(times):
        try:
            return np.asarray(times(), dtype=np.float64)
        except DataError:  # no usable timestamps in the file: fall back to the nominal rate
            pass
    return np.arange(len(episode)) / fps


def embed_episode(model: LIVModel, episode: Episode, batch_size: int, progress: bool = False,
                  read_ahead_chunks: int | None = None) -> Any:
    """(T, D) float32 image embeddings of an episode, decoded and encoded a chunk at a time.

    ``read_ahead_chunks`` 1: the next chunk (``max(batch_size, 256)`` frames) decodes in a background
    thread while this one is encoded; 0: one after the other; None: as liv.data.prefetch.read_ahead_depth
    decides for the model's device (on an accelerator only).
    """
    import torch
    from tqdm.auto import tqdm

    from liv.data.prefetch import read_ahead, read_ahead_depth

    if read_ahead_chunks is None:
        read_ahead_chunks = read_ahead_depth(model.device)

    chunk = max(batch_size, 256)
    parts = []
    spans = [range(start, min(start + chunk, len(episode))) for start in range(0, len(episode), chunk)]
    with tqdm(total=len(episode), desc="embed", unit="frame", disable=None if progress else True,
              file=sys.stderr) as bar:  # None: only on a terminal
        for frames in read_ahead(spans, episode.read, read_ahead_chunks):
            parts.append(model.encode_images(frames, batch_size=batch_size))
            bar.update(len(frames))
    return torch.cat(parts) if parts else torch.empty(0, model.embed_dim)


def _open(path: Path, format: str, camera: str | None, text: str | None = None) -> EpisodeDataset:
    from liv.data.open import open_dataset

    return open_dataset(path, format=format, camera=camera, text=text)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- liv reward
def run_reward(args: RewardArgs) -> int:
    """`liv reward`: one input -> rewards.csv, rewards.png (and an animation); or --data -> parquet.

    Raises ValueError naming the option for a bad or contradictory option (checked before the model is
    loaded), DataError naming the file and line for bad data (an episode without text and no --goal).
    """
    import liv
    from liv.data.images import read_image
    from liv.eval.figures import short_label
    from liv.eval.reward_figure import episode_title, frame_strip, plot_reward_figure, write_reward_animation
    from liv.reward import embed_goals, scores_from_embeddings

    check_fields(args, as_options=True)
    if (args.input is None) == (args.data is None):
        raise ValueError("give exactly one of INPUT (a video, image folder or dataset) and --data DATASET")
    if args.progress_parquet is not None and args.data is None:
        raise ValueError("--progress-parquet needs --data (a LeRobot dataset)")
    if args.data is not None:
        from liv.eval.reward_table import write_reward_table

        return write_reward_table(args)
    assert args.input is not None
    check_path(args.out, "out_dir", "--out")  # a folder here, a file with --data
    single = _is_single(args.input)
    if single and not args.goal and not args.goal_image:
        raise ValueError(f"{args.input} has no text of its own: give --goal TEXT and/or --goal-image PATH")
    dataset = _open(args.input, args.format, args.camera,
                    text=(args.goal[0] if args.goal else args.input.stem) if single else None)
    if not 0 <= args.episode < len(dataset):
        raise ValueError(f"--episode {args.episode} is out of range: {args.input} has {len(dataset)} episodes")
    episode = dataset[args.episode]
    if len(episode) == 0:
        raise ValueError(f"{episode.source}: the episode has no frames")
    if not args.goal and not args.goal_image and not episode.text.strip():
        raise DataError(episode.source, "the episode has an empty text: give --goal TEXT and/or --goal-image PATH")

    texts = list(args.goal) or ([] if args.goal_image else [episode.text])
    from liv.eval.detection import thresholds_for_goals

    thresholds = thresholds_for_goals(args.success_thresholds, texts, len(args.goal_image))
    goals: list[Any] = texts + [read_image(p) for p in args.goal_image]
    labels = _unique([slug(t) for t in texts] + [slug(p.stem) for p in args.goal_image])
    model = liv.load(args.model, device=args.device)
    fps = _fps(episode, args.fps)
    goal_emb = embed_goals(model, goals, strict_text=args.strict_text)
    frame_emb = embed_episode(model, episode, args.batch_size, progress=True)
    scores = scores_from_embeddings(frame_emb, goal_emb, scale=args.scale, gamma=args.gamma).cpu().double().numpy()
    times = _frame_times(episode, fps, given=args.fps is not None)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    prefix = "sim" if args.scale == "similarity" else "value"
    with open(out / "rewards.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        judged = [g for g, text in enumerate(texts) if text in thresholds]
        writer.writerow(["frame", "time_s"] + [c for lab in labels for c in (f"{prefix}_{lab}", f"reward_{lab}")]
                        + [f"success_{labels[g]}" for g in judged])
        # Thresholds are on the similarity S, which scores is unless --scale value.
        similarity = scores if not judged or args.scale == "similarity" else \
            scores_from_embeddings(frame_emb, goal_emb).cpu().double().numpy()
        for t in range(len(episode)):
            row: list[Any] = [t, f"{times[t]:.6f}"]
            for g in range(len(labels)):
                # Row t holds the reward of the step leaving frame t; the last frame has none.
                reward = f"{scores[t + 1, g] - scores[t, g]:.9g}" if t + 1 < len(episode) else ""
                row += [f"{scores[t, g]:.9g}", reward]
            row += [int(similarity[t, g] >= thresholds[texts[g]]) for g in judged]
            writer.writerow(row)
    # Row titles of the figure, one per goal; a lone video has no text of its own, only goals.
    names = _unique([f"text goal \u201c{t}\u201d" for t in texts] + [f"image goal {p.name}" for p in args.goal_image])
    ylabel = "similarity S" if args.scale == "similarity" else f"value S / (1 - {args.gamma:g})"
    curves = {name: scores[:, g] for g, name in enumerate(names)}
    title, text = episode_title(episode, dataset.root, args.episode, single), "" if single else episode.text
    plot_reward_figure(times, curves, out / "rewards.png", title=title, text=text, ylabel=ylabel,
                       strip=frame_strip(episode.read, len(episode)))
    written = ["rewards.csv", "rewards.png"]
    if args.animate:
        anim = out / f"rewards.{args.animation_format}"
        write_reward_animation(episode.read, len(episode), times, curves, anim, fps=fps,
                               title=short_label(title + (f": \u201c{text}\u201d" if text else ""), 110),
                               ylabel=ylabel, progress=True)
        written.append(anim.name)
    print(f"{len(episode)} frames at {fps:g} fps, {len(labels)} goal(s): wrote {', '.join(written)} in {out}")
    listed = f" (listed at {episode.source})" if episode.manifest is not None else ""
    print(f"  episode {args.episode}: {episode.frames.describe()}{listed}")
    for g, label in enumerate(labels):
        print(f"  {label}: {prefix} {scores[0, g]:.4f} -> {scores[-1, g]:.4f}, "
              f"total reward {scores[-1, g] - scores[0, g]:+.4f}")
    return 0


# ------------------------------------------------------------------------------------------- evaluate, compare
def _summary(results: dict[str, Any]) -> str:
    ov = results["overall"]

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    return (f"text-goal VOC {f(ov['text_goal']['voc'])}, negative rate {f(ov['text_goal']['negative_rate'])}; "
            f"image-goal VOC {f(ov['image_goal']['voc'])}; retrieval accuracy {f(ov['retrieval_accuracy']['final'])}; "
            f"AUROC {f(ov['auroc'])}; pairwise accuracy {f(ov.get('pairwise_final'))}; progress r "
            f"{f(ov.get('progress_pearson'))}; held-out success F1 "
            f"{f(((results.get('detection') or {}).get('overall') or {}).get('f1'))} "
            f"({ov['num_episodes']} episodes, {len(results['tasks'])} tasks)")


def run_evaluate(args: EvaluateArgs) -> int:
    """`liv evaluate`: metrics.json and report.html for one model on one dataset.

    Raises ValueError naming the option for a bad option, DataError naming the file and line for bad data,
    CheckpointError for a model that cannot be read; the data and the model are checked before any work.
    """
    import liv
    from liv.eval.metrics import evaluate_dataset
    from liv.checkpoints.model_card import card_folder, write_model_card
    from liv.eval.report import write_report
    from liv.loading import check_model

    check_fields(args, as_options=True)
    dataset = _open(args.data, args.format, args.camera)
    from liv.eval.detection import calibration_dataset, evaluate_detection

    calibration = calibration_dataset(args.calibrate_on, args.format, args.camera, dataset)
    source = check_model(args.model)
    if args.card and source.origin:  # its folder is huggingface_hub's or liv's download cache: not ours to edit
        raise ValueError(f"--card: {args.model} is a downloaded model; save it to a folder of your own first "
                         f"(liv convert {args.model} my_model/) and evaluate that")
    card = card_folder(source.path, "--card") if args.card else None
    model = liv.load(args.model, device=args.device)
    results = evaluate_dataset(model, dataset, extra_goals=args.extra_goal,
                               max_episodes_per_task=args.max_episodes_per_task, batch_size=args.batch_size,
                               progress=True, strict_text=args.strict_text)
    _say_dropped(results)
    results["model"]["path"] = str(args.model)
    results["detection"] = evaluate_detection(results, args.out, str(args.model), model, calibration,
                                              args.calibration_seed, args.batch_size, args.strict_text)
    report = write_report(results, args.out, dataset=dataset, episodes_per_task=args.episodes_per_task,
                          title=f"LIV reward report: {mark_presets(model_labels([args.model]), [source.preset is not None])[0]}")
    print(_summary(results))
    print(f"wrote {args.out / 'metrics.json'} and {report}")
    if card is not None:
        print(f"wrote the figures into {write_model_card(card, model.config, results)}")
    return 0


def _say_dropped(results: dict[str, Any]) -> None:
    """One line on stderr when --max-episodes-per-task left episodes out (counts per outcome; metrics.json too)."""
    note = results["dataset"]["selection"]["note"]
    if note:
        print(f"note: {note}", file=sys.stderr)


def run_compare(args: CompareArgs) -> int:
    """`liv compare`: every model evaluated on the same dataset -> compare.json and compare.html.

    Every input is checked before the first evaluation: the data opened, each model resolved and its
    header or config read. Raises ValueError naming the option for a bad option, DataError naming the
    file and line for bad data, CheckpointError naming the model that cannot be read.
    """
    import liv
    from liv.eval.compare_report import write_compare
    from liv.eval.metrics import evaluate_dataset
    from liv.loading import check_model

    check_fields(args, as_options=True)
    if not args.models:
        raise ValueError("give at least one model with --models")
    dataset = _open(args.data, args.format, args.camera)
    for name in args.models:
        check_model(name)
    results = {}
    for label, name in zip(model_labels(list(args.models)), args.models):
        model = liv.load(name, device=args.device)
        r = evaluate_dataset(model, dataset, extra_goals=args.extra_goal,
                             max_episodes_per_task=args.max_episodes_per_task, batch_size=args.batch_size,
                             progress=True, strict_text=args.strict_text)
        if not results:  # every model sees the same episodes: said once
            _say_dropped(r)
        r["model"]["path"] = str(name)
        if any(e["succeeded"] is not None for e in r["episodes"]):
            from liv.eval.detection import success_detection

            r["detection"] = success_detection(r["episodes"])  # the seeded half split, the same for every model
        results[label] = r
        print(f"{label}: {_summary(r)}")
    page = write_compare(results, args.out, dataset=dataset)
    print(f"wrote {args.out / 'compare.json'} and {page}")
    return 0

"""`liv bc` and `liv plan`: behaviour cloning and reward-guided planning in Meta-World, as in the paper.

Option dataclasses and run functions (registered in :mod:`liv.cli`). Heavy imports (metaworld,
mujoco) happen only when a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liv.envs.metaworld_tasks import TASKS
from liv.eval.planner_config import PlannerConfig  # PlanArgs extends it
from liv.model_names import model_name_problem
from liv.models.devices import device_problem

if TYPE_CHECKING:
    from liv.model import LIVModel


@dataclass
class BCArgs:
    """Language-conditioned behaviour cloning on frozen representations, evaluated by Meta-World rollouts."""

    data: Path = field(metadata={"path": "dir"})
    """LeRobot dataset of expert episodes with actions (e.g. from `liv sim generate`)."""
    model: list[str] = field(default_factory=list, metadata={"check": model_name_problem})
    """Representations to compare (repeat): a model file or directory `liv info` reads, or a model name (a
    preset such as clip-tiny, clip-small, clip-rn50 means random weights). One table row each (per conditioning)."""
    out: Path = field(default=Path("bc_results"), metadata={"path": "out_dir"})
    """Output folder: bc.json (every seed and rollout), bc.md (the table), cache/ (embeddings)."""
    text: bool = True
    """Condition the policy on the text embedding of the task annotation (the paper's LIV rows)."""
    one_hot: bool = False
    """Also train policies conditioned on a one-hot task vector (the paper's "(One-Hot)" rows; the image
    embedding still comes from the model)."""
    tasks: list[str] = field(default_factory=list, metadata={"choices": tuple(TASKS)})
    """Meta-World tasks to evaluate; default: the dataset's tasks."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"min": 0})
    """Training seeds; the table shows mean and std over them (paper: 3)."""
    steps: int = field(default=2000, metadata={"min": 1})
    """Training steps; the half-way and final checkpoints are evaluated and the better one kept."""
    batch_size: int = field(default=256, metadata={"min": 1})
    """Frames per training batch (paper: 4096)."""
    hidden: list[int] = field(default_factory=lambda: [256, 256], metadata={"min": 1})
    """Hidden layer widths of the MLP policy (paper: 1024 1024 1024)."""
    proprio: bool = True
    """Give the policy the hand position and gripper opening too."""
    episodes: int = field(default=10, metadata={"min": 1})
    """Evaluation rollouts per task and checkpoint, each in a new layout (paper: 50)."""
    max_steps: int = field(default=200, metadata={"min": 1})
    """Step limit of an evaluation rollout (12.5 ms each; the experts need 15-130)."""
    eval_seed: int = field(default=1000, metadata={"min": 0})
    """Base seed of the evaluation layouts (training layouts are excluded)."""
    camera: str | None = None
    """Camera to render rollouts from; default: the dataset's (the policy learned from its frames), else
    the (first) model's training frames' as its provenance records, else corner."""
    size: tuple[int, int] | None = field(default=None, metadata={"min": 2})
    """Rollout frame height and width in pixels; default: the dataset's, else the (first) model's training
    frames', else 128 128."""
    cache_dir: Path | None = field(default=None, metadata={"path": "out_dir"})
    """Where embeddings are cached; default: OUT/cache."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device for the model and the policy."""
    threads: int | None = field(default=1, metadata={"min": 0})
    """Torch CPU threads while training a policy (small MLPs train fastest on 1; 0: torch's default)."""


@dataclass
class PlanArgs(PlannerConfig):
    """Plan with the LIV text-goal reward and ground-truth simulation (CEM or MPPI) in Meta-World tasks.

    The planner's settings (--planner, --horizon, --samples, ...) are the fields of PlannerConfig."""

    model: list[str] = field(default_factory=list, metadata={"check": model_name_problem})
    """Models to compare (repeat): a model file or directory `liv info` reads, or a model name (a preset: random
    weights)."""
    tasks: list[str] = field(default_factory=list, metadata={"choices": tuple(TASKS)})
    """Meta-World tasks to plan in (e.g. reach-v3 drawer-open-v3); `liv sim generate --list-tasks` lists them."""
    episodes: int = field(default=5, metadata={"min": 1})
    """Episodes (layouts) per task and seed."""
    out: Path = field(default=Path("plan_results"), metadata={"path": "out_dir"})
    """Output folder: plan.json (every episode's values and states) and plan.md (the table)."""
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"min": 0})
    """Seeds of layouts and planner noise (each combined with --seed); the table shows mean and std over them."""
    max_steps: int = field(default=100, metadata={"min": 1})
    """Steps per episode (an episode also ends at its first success)."""
    camera: str | None = None
    """Camera to render from; default: the one the (first) model's training frames came from, as its
    provenance records (`liv info` shows it; the demo's model: closeup), else corner."""
    size: tuple[int, int] | None = field(default=None, metadata={"min": 2})
    """Rendered frame height and width in pixels; default: the (first) model's training frames' (the demo's
    model: 64 64), else 64 64 (small is fast; the model resizes to its input)."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device for the model."""
    threads: int | None = field(default=1, metadata={"min": 0})
    """Torch CPU threads (1 is fastest for small models on a busy CPU; 0: torch's default)."""


def checked_models(names: list[str]) -> list[str]:
    """Table labels of the models ``names`` (see liv.model_names), each checked as far as can be done without
    reading its weights, so that a bad second model fails before the first is evaluated.

    Raises ValueError if there are none, CheckpointError naming a model that cannot be read."""
    from liv.loading import check_model

    if not names:
        raise ValueError("give at least one --model (a model file or a preset name such as clip-tiny)")
    from liv.eval.labels import mark_presets, model_labels

    sources = [check_model(name) for name in names]
    # distinct: two runs' "model" folders must not share a row
    return mark_presets(model_labels(names), [source.preset is not None for source in sources])


def load_model(name: str, device: str = "cpu") -> LIVModel:
    """The model ``name`` stands for, on ``device``: ``liv.load`` (a preset: random weights, seed 0)."""
    import liv

    return liv.load(name, device=device)


@dataclass(frozen=True)
class Rendering:
    """Camera and frame size of rollouts, where they came from, and what to tell the user about them."""

    camera: str
    size: tuple[int, int]
    """(height, width) in pixels."""
    notes: tuple[str, ...] = ()
    """Lines for stdout: which settings were taken from a model's provenance."""
    warnings: tuple[str, ...] = ()
    """Lines for stderr: models whose training frames were rendered otherwise (one line per model)."""


def _trained_on(rendering: dict[str, Any]) -> str:
    stride = rendering.get("record_every")
    h, w = rendering["size"]
    return f"camera {rendering['camera']} at {h}x{w} px" + (f", one frame every {stride} steps" if stride else "")


def resolve_rendering(command: str, camera: str | None, size: Sequence[int] | None,
                      models: Sequence[tuple[str, dict[str, Any] | None]], data: dict[str, Any] | None = None,
                      default_size: tuple[int, int] = (64, 64)) -> Rendering:
    """Choose the rollouts' camera and (height, width) -> :class:`Rendering`.

    Each setting is, in order of precedence: the option given (``camera``, ``size``); the dataset's
    (``data``, a :func:`liv.envs.metaworld_data.rendering_settings` record: a BC policy learns from
    those frames); the training frames of the first model that records them (``models``: (label, its provenance's
    "rendering" record or None) per model; presets and imported files record none); else corner / ``default_size``. A note says when a model's record
    decided; a warning names each model trained on another camera or frame size than the rollouts use
    (its embeddings, and so its rewards, then see frames unlike any it learned from).
    """
    trained = [(label, r) for label, r in models if r]
    first = trained[0] if trained else None

    def pick(key: str, given: Any, fallback: Any) -> tuple[Any, str]:
        """(value, where it came from) of the first source that has one."""
        sources = [(given, f"--{key}"), (data and data[key], "the dataset"),
                   (first and first[1][key], f"{first[0]}'s provenance" if first else ""), (fallback, "the default")]
        return next((value, source) for value, source in sources if value is not None)

    chosen_camera, camera_from = pick("camera", camera, "corner")
    chosen_size, size_from = pick("size", size, default_size)
    chosen_size = (int(chosen_size[0]), int(chosen_size[1]))
    taken = [text for text, source in ((f"camera {chosen_camera}", camera_from),
                                       (f"size {chosen_size[0]}x{chosen_size[1]} px", size_from))
             if source.endswith("provenance")]
    notes = []
    if taken and first is not None:
        notes.append(f"{command}: {' and '.join(taken)} from {first[0]}'s provenance (it was trained on "
                     f"{_trained_on(first[1])}); --camera / --size choose others")
    warnings = [f"{command}: warning: {label} was trained on {_trained_on(r)}, but rollouts render camera "
                f"{chosen_camera} ({camera_from}) at {chosen_size[0]}x{chosen_size[1]} px ({size_from}): its "
                "embeddings of these frames are not what it learned from"
                for label, r in trained if r["camera"] != chosen_camera or tuple(r["size"]) != chosen_size]
    return Rendering(chosen_camera, chosen_size, tuple(notes), tuple(warnings))


def _say_rendering(rendering: Rendering) -> None:
    for line in rendering.notes:
        print(line, flush=True)
    for line in rendering.warnings:
        print(line, file=sys.stderr, flush=True)


def _model_rendering(spec: str, model: LIVModel) -> dict[str, Any] | None:
    """The "rendering" record of a model's provenance (None when it has none); ValueError naming the model
    when the record is malformed (provenance is free-form JSON, so it may have been edited by hand)."""
    rendering = model.config.provenance.get("rendering")
    if rendering is None:
        return None
    size = rendering.get("size") if isinstance(rendering, dict) else None
    well_formed = (isinstance(size, list) and len(size) == 2 and isinstance(rendering.get("camera"), str)
                   and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size))
    if not well_formed:
        raise ValueError(f"--model {spec}: provenance.rendering must hold a camera name and a [height, width] "
                         f"size in pixels, got {json.dumps(rendering)}")
    return rendering


def _generation_record(data: Path) -> dict[str, Any]:
    path = data / "meta" / "liv_generation.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_bc_command(args: BCArgs) -> int:
    """Run `liv bc` -> exit status 0; writes OUT/bc.json and OUT/bc.md and prints the table."""
    from liv.data.lerobot import read_lerobot
    from liv.envs.metaworld_data import rendering_settings
    from liv.envs.metaworld_env import TASKS
    from liv.eval.bc import embed_dataset, run_bc
    from liv.eval.sim_report import markdown_table, write_sim_report

    if not args.model:
        raise ValueError("give at least one --model (a model file or a preset name such as clip-tiny)")
    conditionings = (["text"] if args.text else []) + (["onehot"] if args.one_hot else [])
    if not conditionings:
        raise ValueError("nothing to train: --no-text without --one-hot")
    dataset = read_lerobot(args.data)
    gen = _generation_record(args.data)
    request = gen.get("request", {})
    by_text = {spec.text: name for name, spec in TASKS.items()}
    tasks = args.tasks or request.get("tasks") or [by_text[t] for t in dataset.texts if t in by_text]
    if not tasks:
        raise ValueError(f"{args.data}: cannot tell which Meta-World tasks the episodes show; give --tasks")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {', '.join(unknown)}; `liv sim generate --list-tasks` lists them")
    labels = checked_models(args.model)  # after the data: a named model may be downloaded
    models = [load_model(spec, args.device) for spec in args.model]
    trained = [(spec, _model_rendering(spec, m)) for spec, m in zip(args.model, models)]
    rendering = resolve_rendering("liv bc", args.camera, args.size, trained, rendering_settings(args.data),
                                  default_size=(128, 128))
    _say_rendering(rendering)
    camera, size = rendering.camera, rendering.size
    exclude = [int(e["env_seed"]) for e in gen.get("episodes", [])]  # never evaluate on a training layout
    cache = args.cache_dir or args.out / "cache"
    rows: dict[str, Any] = {}
    for spec, label, model in zip(args.model, labels, models):
        emb = embed_dataset(model, dataset, cache)
        print(f"{label}: {len(emb['image'])} frames embedded{' (from the cache)' if emb['cached'] else ''}",
              flush=True)
        for cond in conditionings:
            row = f"{label} ({'text' if cond == 'text' else 'one-hot'})"
            rows[row] = run_bc(model, dataset, tasks, cond, args.seeds, args.steps, args.batch_size, args.hidden,
                               args.proprio, args.episodes, args.max_steps, args.eval_seed, camera, size,
                               exclude_seeds=exclude, log=lambda m, r=row: print(f"{r}: {m}", flush=True),
                               embeddings=emb, num_threads=args.threads or None)
            rows[row]["model"] = spec
    notes = [f"data: {args.data}; {args.episodes} rollouts per task on new layouts, up to {args.max_steps} steps; "
             f"{args.steps} training steps, batch {args.batch_size}, hidden {args.hidden}; best of half-way and "
             f"final checkpoints per seed; seeds {args.seeds}; rollouts rendered from camera {camera} at "
             f"{size[0]}x{size[1]} px"]
    json_path, md_path = write_sim_report(rows, args.out, "bc", "Language-conditioned behaviour cloning", tasks, notes)
    print(markdown_table(rows, tasks), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0


def run_plan(args: PlanArgs) -> int:
    """Run `liv plan` -> exit status 0; writes OUT/plan.json and OUT/plan.md and prints the table."""
    from liv.envs.metaworld_env import TASKS
    from liv.eval.bc import torch_threads
    from liv.eval.planning import run_planning
    from liv.eval.sim_report import markdown_table, write_sim_report

    labels = checked_models(args.model)
    if not args.tasks:
        raise ValueError(f"give --tasks; annotated tasks: {', '.join(TASKS)}")
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {', '.join(unknown)}; `liv sim generate --list-tasks` lists them")
    config = args.resolved()
    models = [load_model(spec, args.device) for spec in args.model]
    rendering = resolve_rendering("liv plan", args.camera, args.size,
                                  [(spec, _model_rendering(spec, m)) for spec, m in zip(args.model, models)])
    _say_rendering(rendering)
    rows: dict[str, Any] = {}
    for spec, label, model in zip(args.model, labels, models):
        with torch_threads(args.threads or None):
            rows[label] = run_planning(model, args.tasks, config, args.episodes, args.max_steps, args.seeds,
                                       rendering.camera, rendering.size,
                                       log=lambda m, r=label: print(f"{r}: {m}", flush=True))
        rows[label]["model"] = spec
    notes = [f"{config.planner.upper()} with ground-truth simulation: horizon {config.horizon}, {config.samples} "
             f"samples, {config.iterations} iterations, replanning every {config.replan_every} steps, score "
             f"{config.score}; {args.episodes} episodes per task and seed, up to {args.max_steps} steps; rendered from "
             f"camera {rendering.camera} at {rendering.size[0]}x{rendering.size[1]} px"]
    json_path, md_path = write_sim_report(rows, args.out, "plan", "Planning with the LIV reward", args.tasks, notes)
    print(markdown_table(rows, args.tasks), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0

"""`liv bc` and `liv plan`: behaviour cloning and reward-guided planning in a simulation suite, as in the paper.

Option dataclasses and run functions (registered in :mod:`liv.cli`). The suite (Meta-World, the kitchen)
is the dataset's or the tasks'. Heavy imports (the simulators) happen only when a command runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from liv.model_names import model_name_problem
from liv.models.devices import device_problem
from liv.sim.planner_config import PlannerConfig  # PlanArgs extends it
from liv.sim.rollout_rendering import Rendering, model_rendering, resolve_rendering, say_rendering  # noqa: F401
from liv.sim.suite import Suite, all_tasks, get_suite, suite_names, suite_of

if TYPE_CHECKING:
    from liv.model import LIVModel


@dataclass
class BCArgs:
    """Language-conditioned behaviour cloning on frozen representations, evaluated by rollouts in the dataset's
    simulation suite (Meta-World or the kitchen)."""

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
    tasks: list[str] = field(default_factory=list, metadata={"choices": all_tasks()})
    """Tasks to evaluate (of the dataset's suite); default: the dataset's tasks."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"min": 0})
    """Training seeds; the table shows mean and std over them (paper: 3)."""
    steps: int = field(default=2000, metadata={"min": 1})
    """Training steps; the half-way and final checkpoints are evaluated and the better one kept."""
    batch_size: int | None = field(default=None, metadata={"min": 1})
    """Frames per training batch; default: the suite's (Meta-World 256, scaled down from the paper's 4096; the
    kitchen 32, the paper's Table 5)."""
    hidden: list[int] = field(default_factory=lambda: [256, 256], metadata={"min": 1})
    """Hidden layer widths of the MLP policy (paper: Meta-World 1024 1024 1024, the kitchen 256 256)."""
    proprio: bool = True
    """Give the policy the proprioceptive state too (Meta-World: hand position and gripper opening; the
    kitchen: joint positions)."""
    episodes: int = field(default=10, metadata={"min": 1})
    """Evaluation rollouts per task and checkpoint, each from a new start state (paper: 50)."""
    max_steps: int | None = field(default=None, metadata={"min": 1})
    """Step limit of an evaluation rollout; default: the suite's (Meta-World 200 steps of 12.5 ms, the experts
    need 15-130; the kitchen: see `liv sim generate --list-tasks`)."""
    eval_seed: int = field(default=1000, metadata={"min": 0})
    """Base seed of the evaluation layouts (training layouts are excluded)."""
    camera: str | None = None
    """Camera to render rollouts from; default: the dataset's (the policy learned from its frames), else
    the (first) model's training frames' as its provenance records, else the suite's first (corner)."""
    size: tuple[int, int] | None = field(default=None, metadata={"min": 2})
    """Rollout frame height and width in pixels; default: the dataset's, else the (first) model's training
    frames', else 128 128."""
    cache_dir: Path | None = field(default=None, metadata={"path": "out_dir"})
    """Where embeddings are cached; default: OUT/cache."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device for the model and the policy."""
    threads: int | None = field(default=1, metadata={"min": 0})
    """Torch CPU threads while training a policy (small MLPs train fastest on 1; 0: torch's default)."""
    weighting: list[str] = field(default_factory=lambda: ["none"], metadata={"choices": ("none", "rwr", "sim")})
    """How training frames are weighted, one row each (repeat): none (plain BC), rwr (reward-weighted regression
    with the model's LIV reward, liv.sim.bc_weights), sim (the same with the simulator's own dense reward from
    the data's next.reward: an oracle). Weights are written to OUT/weights/."""
    train_episodes: Literal["successful", "all"] = "successful"
    """Episodes trained on: successful ones (failures are not demonstrations), or all (mixed-quality data, where
    weighting decides what counts)."""
    rwr_goal: Literal["text", "image"] = "text"
    """rwr: the goal of the LIV value, the episode's text or its last frame."""
    rwr_beta: float = field(default=1.0, metadata={"gt": 0})
    """rwr, sim: inverse temperature on per-task standardised advantages, w = min(exp(beta z), max weight)."""
    rwr_horizon: int = field(default=20, metadata={"min": 1})
    """rwr, sim: steps the potential-based reward is summed over (the advantage is V_t+H - V_t; the defaults
    were chosen by bench/rwr_weight_sweep.py, docs/sim_benchmark.md)."""
    rwr_max_weight: float = field(default=20.0, metadata={"gt": 0})
    """rwr, sim: the largest weight a frame can get."""


@dataclass
class PlanArgs(PlannerConfig):
    """Plan with the LIV text-goal reward and ground-truth simulation (CEM or MPPI) in simulated tasks (Meta-World,
    the kitchen).

    The planner's settings (--planner, --horizon, --samples, ...) are the fields of PlannerConfig."""

    model: list[str] = field(default_factory=list, metadata={"check": model_name_problem})
    """Models to compare (repeat): a model file or directory `liv info` reads, or a model name (a preset: random
    weights)."""
    tasks: list[str] = field(default_factory=list, metadata={"choices": all_tasks()})
    """Tasks to plan in, all of one suite (e.g. reach-v3 drawer-open-v3, or kitchen_micro_open); `liv sim
    generate --list-tasks` lists them."""
    episodes: int = field(default=5, metadata={"min": 1})
    """Episodes (layouts) per task and seed."""
    out: Path = field(default=Path("plan_results"), metadata={"path": "out_dir"})
    """Output folder: plan.json (every episode's values and states) and plan.md (the table)."""
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"min": 0})
    """Seeds of layouts and planner noise (each combined with --seed); the table shows mean and std over them."""
    max_steps: int | None = field(default=None, metadata={"min": 1})
    """Steps per episode (an episode also ends at its first success); default: Meta-World 100, the kitchen its
    episode length (50, the paper's)."""
    random_goal: bool = False
    """Score each episode against another task's text, drawn at random (the paper's Table 9 control): success
    should collapse when the reward reads the language."""
    camera: str | None = None
    """Camera to render from; default: the one the (first) model's training frames came from, as its
    provenance records (`liv info` shows it; the demo's model: closeup), else the suite's first."""
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


def _generation_record(data: Path) -> dict[str, Any]:
    path = data / "meta" / "liv_generation.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _dataset_suite(data: Path, request: dict[str, Any], tasks: list[str], texts: list[str]) -> tuple[Suite, list[str]]:
    """The suite and tasks of a dataset: the --tasks given, else the generation record's, else the tasks whose
    texts the episodes carry -> (suite, tasks). ValueError when none can be told."""
    if not tasks and request:
        return suite_of(request["tasks"], request.get("suite", "metaworld")), list(request["tasks"])
    if tasks:
        return suite_of(tasks, request.get("suite") if request else None), tasks
    for name in suite_names():
        suite = get_suite(name)
        by_text = {spec.text: task for task, spec in suite.tasks.items()}
        found = [by_text[t] for t in texts if t in by_text]
        if found:
            return suite, found
    raise ValueError(f"{data}: cannot tell which simulated tasks the episodes show; give --tasks")


def run_bc_command(args: BCArgs) -> int:
    """Run `liv bc` -> exit status 0; writes OUT/bc.json and OUT/bc.md and prints the table."""
    from liv.data.lerobot import read_lerobot
    from liv.sim.bc import embed_dataset, run_bc
    from liv.sim.generate import rendering_settings
    from liv.sim.report import markdown_table, write_sim_report

    if not args.model:
        raise ValueError("give at least one --model (a model file or a preset name such as clip-tiny)")
    conditionings = (["text"] if args.text else []) + (["onehot"] if args.one_hot else [])
    if not conditionings:
        raise ValueError("nothing to train: --no-text without --one-hot")
    dataset = read_lerobot(args.data)
    gen = _generation_record(args.data)
    suite, tasks = _dataset_suite(args.data, gen.get("request", {}), args.tasks, dataset.texts)
    labels = checked_models(args.model)  # after the data: a named model may be downloaded
    models = [load_model(spec, args.device) for spec in args.model]
    trained = [(spec, model_rendering(spec, m)) for spec, m in zip(args.model, models)]
    rendering = resolve_rendering("liv bc", args.camera, args.size, trained, rendering_settings(args.data),
                                  default_size=(128, 128), suite=suite)
    say_rendering(rendering)
    camera, size = rendering.camera, rendering.size
    max_steps = args.max_steps or suite.episode_steps
    batch_size = args.batch_size or suite.bc_batch_size
    exclude = [int(e["env_seed"]) for e in gen.get("episodes", [])]  # never evaluate on a training layout
    cache = args.cache_dir or args.out / "cache"
    rows: dict[str, Any] = {}
    for spec, label, model in zip(args.model, labels, models):
        emb = embed_dataset(model, dataset, cache)
        print(f"{label}: {len(emb['image'])} frames embedded{' (from the cache)' if emb['cached'] else ''}",
              flush=True)
        for cond in conditionings:
            for weighting in args.weighting:
                weights = _frame_weights(args, dataset, emb, weighting, spec, label)
                row = f"{label} ({'text' if cond == 'text' else 'one-hot'}" + \
                      (f", {weighting}-weighted)" if weighting != "none" else ")")
                rows[row] = run_bc(model, dataset, tasks, cond, args.seeds, args.steps, batch_size, args.hidden,
                                   args.proprio, args.episodes, max_steps, args.eval_seed, camera, size,
                                   exclude_seeds=exclude, log=lambda m, r=row: print(f"{r}: {m}", flush=True),
                                   embeddings=emb, num_threads=args.threads or None, suite=suite.name,
                                   weights=weights, only_successful=args.train_episodes == "successful")
                rows[row]["model"] = spec
                rows[row]["weighting"] = weighting
    if args.weighting != ["none"]:
        notes_w = (f"weighting: w = min(exp({args.rwr_beta} z), {args.rwr_max_weight}) with z the per-task "
                   f"standardised advantage V_t+{args.rwr_horizon} - V_t (rwr: the LIV value against the "
                   f"{args.rwr_goal} goal; sim: the simulator's reward); trained on {args.train_episodes} episodes; "
                   f"weights in {args.out / 'weights'}")
    notes = ([notes_w] if args.weighting != ["none"] else []) + [
             f"data: {args.data} ({suite.title}); {args.episodes} rollouts per task from new start states, up to "
             f"{max_steps} steps; {args.steps} training steps, batch {batch_size}, hidden {args.hidden}; best of "
             f"half-way and final checkpoints per seed; seeds {args.seeds}; rollouts rendered from camera {camera} "
             f"at {size[0]}x{size[1]} px"]
    json_path, md_path = write_sim_report(rows, args.out, "bc", "Language-conditioned behaviour cloning", tasks, notes)
    print(markdown_table(rows, tasks), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0


def _frame_weights(args: BCArgs, dataset, emb, weighting: str, spec: str, label: str):
    """Per-frame weights of ``weighting`` (None for none), written to OUT/weights/<label>-<weighting>.parquet."""
    if weighting == "none":
        return None
    from liv.eval.commands import slug
    from liv.sim.bc_weights import frame_weights, write_weights

    weights = frame_weights(emb, "liv" if weighting == "rwr" else "sim", args.rwr_goal, args.rwr_horizon,
                            args.rwr_beta, args.rwr_max_weight)
    path = write_weights(args.out / "weights" / f"{slug(label)}-{weighting}.parquet",
                         [ep.meta.get("episode_index", i) for i, ep in enumerate(dataset)], [len(ep) for ep in dataset],
                         weights, spec if weighting == "rwr" else "simulator next.reward")
    print(f"{label}: {weighting} weights in {path} (mean {weights['weight'].mean():.2f}, max "
          f"{weights['weight'].max():.2f})", flush=True)
    return weights["weight"]


def run_plan(args: PlanArgs) -> int:
    """Run `liv plan` -> exit status 0; writes OUT/plan.json and OUT/plan.md and prints the table."""
    from liv.sim.bc import torch_threads
    from liv.sim.planning import run_planning
    from liv.sim.report import markdown_table, write_sim_report

    labels = checked_models(args.model)
    if not args.tasks:
        raise ValueError("give --tasks; `liv sim generate --list-tasks` lists each suite's")
    suite = suite_of(args.tasks)
    config = args.resolved()
    max_steps = args.max_steps or suite.plan_steps
    models = [load_model(spec, args.device) for spec in args.model]
    rendering = resolve_rendering("liv plan", args.camera, args.size,
                                  [(spec, model_rendering(spec, m)) for spec, m in zip(args.model, models)],
                                  suite=suite)
    say_rendering(rendering)
    rows: dict[str, Any] = {}
    for spec, label, model in zip(args.model, labels, models):
        with torch_threads(args.threads or None):
            rows[label] = run_planning(model, args.tasks, config, args.episodes, max_steps, args.seeds,
                                       rendering.camera, rendering.size,
                                       log=lambda m, r=label: print(f"{r}: {m}", flush=True), suite=suite.name,
                                       random_goal=args.random_goal)
        rows[label]["model"] = spec
    goal = "random other tasks' texts (control)" if args.random_goal else "the task's text"
    notes = [f"{config.planner.upper()} with ground-truth {suite.title} simulation: horizon {config.horizon}, "
             f"{config.samples} samples, {config.iterations} iterations, replanning every {config.replan_every} "
             f"steps, score {config.score} against {goal}; warm start {'on' if config.warm_start else 'off'}; "
             f"{args.episodes} episodes per task and seed, up to {max_steps} steps; rendered from camera "
             f"{rendering.camera} at {rendering.size[0]}x{rendering.size[1]} px"]
    title = "Planning with the LIV reward" + (" against random goals" if args.random_goal else "")
    json_path, md_path = write_sim_report(rows, args.out, "plan", title, args.tasks, notes)
    print(markdown_table(rows, args.tasks), end="")
    print(f"wrote {json_path} and {md_path}")
    return 0

"""The protocol of `liv reproduce`: data -> fine-tuned models -> LCBC and planning cells -> results.

Stages, each cached (:mod:`liv.sim.reproduce.cells`):
1. data: the tasks' expert episodes (`liv sim generate`), or the --data given;
2. models: for each init and each fine-tuning objective, a `liv train` run on that data (resumed
   where a stopped run left it);
3. LCBC: for each representation (the init as it is, and each fine-tuned model), conditioning and
   training seed, one policy trained on the frozen embeddings and rolled out from new start states;
4. planning: for each planned reward and CEM iteration count, episodes per task and seed; plus the
   random-goal control and the simulator-reward oracle;
5. the Figure 6 value curves of each representation on demonstrations.
Stages 3 and 4 are units run in worker processes (:mod:`liv.sim.reproduce.units`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from liv.sim.reproduce.cells import CellStore, cell_key, file_key
from liv.sim.reproduce.config import ReproduceConfig, parse_init

OBJECTIVE_TITLES = {"pretrained": "Pre-Trained", "liv": "LIV", "clip": "CLIP", "vip-i": "VIP-I"}


@dataclass(frozen=True)
class Representation:
    """A model whose frozen embeddings (LCBC) or values (planning) are measured."""

    init: str
    """The init's label (a Table 1 row: Random, CLIP, LIV-EPIC, or a folder name)."""
    objective: str
    """pretrained (the init as it is) or the fine-tuning objective (liv, clip, vip-i)."""
    model: str
    """What liv.load reads: a preset name, a file, or a trained run's model folder."""
    key: str
    """Cache key of the weights (a preset name, a file's key, or the training cell's)."""

    @property
    def label(self) -> str:
        if self.objective == "pretrained":
            return self.init
        return f"{self.init} + {OBJECTIVE_TITLES[self.objective]} FT"


def _say(config: ReproduceConfig, message: str) -> None:
    if config.progress:
        print(f"liv reproduce: {message}", flush=True)


# ------------------------------------------------------------------------------------------------ data

def data_settings(config: ReproduceConfig) -> dict[str, Any]:
    """The generation settings of the run's data (its cache key's input)."""
    return {"suite": config.suite, "tasks": list(config.tasks), "episodes": config.episodes, "seed": config.data_seed,
            "camera": config.camera, "size": [config.size, config.size]}


def prepare_data(config: ReproduceConfig) -> tuple[Path, str]:
    """The dataset folder and its key: --data as given, else generated into OUT/data/<key> (resumable)."""
    if config.data is not None:
        info = config.data / "meta" / "info.json"
        if not info.is_file():
            raise ValueError(f"{config.data}: not a LeRobot dataset (no meta/info.json)")
        return config.data, cell_key("data", {"given": file_key(config.data / "meta")})
    settings = data_settings(config)
    key = cell_key("data", settings)
    root = config.out / "data" / key
    if not (root / "meta" / "info.json").is_file():
        from liv.sim.generate import generate_dataset

        _say(config, f"1/5 generating {config.episodes} expert episodes per task into {root}")
        generate_dataset(config.tasks, config.episodes, seed=config.data_seed, out=root, camera=config.camera,
                         size=(config.size, config.size), workers=config.workers, progress=config.progress,
                         suite=config.suite)
    return root, key


def training_env_seeds(data: Path) -> list[int]:
    """Env seeds of the dataset's episodes (its generation record), never used for evaluation."""
    path = data / "meta" / "liv_generation.json"
    if not path.is_file():
        return []
    return [int(e["env_seed"]) for e in json.loads(path.read_text()).get("episodes", [])]


# ---------------------------------------------------------------------------------------------- models

def init_key(model: str) -> str:
    """Cache key of an init: its name for a preset or a hub name, its file key for a path."""
    return file_key(model) if Path(model).exists() else cell_key("named", {"name": model})


def train_settings(config: ReproduceConfig, objective: str, init: str, data_key: str) -> dict[str, Any]:
    """What a fine-tuning run depends on (its cache key's input)."""
    return {"init": init, "data": data_key, "objective": objective, "steps": config.train_steps,
            "batch_size": config.train_batch_size, "lr": config.train_lr, "lr_schedule": config.train_lr_schedule,
            "augment": config.train_augment, "seed": 0}


def representations(config: ReproduceConfig, data_key: str) -> list[Representation]:
    """Every representation of the run, in table order (per init: pre-trained, then each objective)."""
    reps = []
    for spec in config.init:
        label, model = parse_init(spec)
        ikey = init_key(model)
        reps.append(Representation(label, "pretrained", model, ikey))
        for objective in config.objectives:
            key = cell_key("model", train_settings(config, objective, ikey, data_key))
            folder = config.out / "models" / f"{_slug(label)}-{objective}-{key}"
            reps.append(Representation(label, objective, str(folder / "model"), key))
    return reps


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "model"


def train_models(config: ReproduceConfig, reps: list[Representation], data: Path, data_key: str) -> None:
    """Fine-tune every representation that is not the init, resuming a stopped run, skipping finished ones."""
    inits = {r.init: r for r in reps if r.objective == "pretrained"}
    todo = [r for r in reps if r.objective != "pretrained" and not (Path(r.model) / "config.json").is_file()]
    for i, rep in enumerate(todo):
        run = Path(rep.model).parent
        settings = train_settings(config, rep.objective, inits[rep.init].model, data_key)
        _say(config, f"2/5 fine-tuning {rep.label} ({i + 1}/{len(todo)}) into {run}")
        given = {"data": data, "out": run, "init": inits[rep.init].model, "objective": rep.objective,
                 "steps": settings["steps"], "batch_size": settings["batch_size"], "lr": settings["lr"],
                 "lr_schedule": settings["lr_schedule"], "augment": settings["augment"], "seed": 0,
                 "device": config.train_device, "save_every": max(1, settings["steps"] // 5), "log_every": 25,
                 "num_workers": 1, "progress": config.progress, "resume": (run / "train_config.json").is_file()}
        if config.train_processes > 1:
            _torchrun(given, config.train_processes)
        else:
            from liv.train import train
            from liv.training.config import build_config

            train(build_config(given))


def _torchrun(given: dict[str, Any], processes: int) -> None:
    """`torchrun --nproc_per_node N -m liv train ...` with ``given`` as options (the DDP path of `liv train`)."""
    argv = [shutil.which("torchrun") or "torchrun", f"--nproc_per_node={processes}", "-m", "liv", "train"]
    for key, value in given.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else ([f"--no-{key.replace('_', '-')}"] if key == "progress" else [])
        else:
            argv += [flag, str(value)]
    if subprocess.run(argv, check=False).returncode != 0:
        raise RuntimeError(f"torchrun fine-tuning failed: {' '.join(argv)}")


# ----------------------------------------------------------------------------------------------- cells

def lcbc_jobs(config: ReproduceConfig, reps: list[Representation], data: Path, data_key: str,
              suite) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(kind, key, settings, job) of every LCBC unit."""
    exclude = training_env_seeds(data)
    proprio = bool(config.bc_proprio)
    batch = config.bc_batch_size or suite.bc_batch_size
    max_steps = config.bc_max_steps or suite.episode_steps
    camera = config.camera or suite.default_camera
    out = []
    for rep in reps:
        for cond in config.conditionings:
            for seed in config.bc_seeds:
                settings = {"rep": rep.key, "data": data_key, "conditioning": cond, "seed": seed,
                            "steps": config.bc_steps, "batch_size": batch, "hidden": list(config.bc_hidden),
                            "proprio": proprio, "rollouts": config.bc_rollouts, "checkpoint": config.bc_checkpoint,
                            "max_steps": max_steps, "eval_seed": 1000 + 100 * seed, "camera": camera,
                            "size": [config.size, config.size], "tasks": list(config.tasks)}
                job = {**settings, "model": rep.model, "device": config.device, "data": str(data),
                       "cache": str(config.out / "cache"), "exclude": exclude, "suite": suite.name}
                out.append(("lcbc", cell_key("lcbc", settings), settings, {**job, "label": rep.label}))
    return out


def planner_settings(config: ReproduceConfig, iterations: int, seed: int, episode: int) -> dict[str, Any]:
    """PlannerConfig fields of one planning episode (its noise seeded by seed and episode)."""
    import numpy as np

    from liv.sim.planner_config import PlannerConfig

    cfg = PlannerConfig(planner=config.planner, horizon=config.plan_horizon, samples=config.plan_samples,
                        iterations=iterations, replan_every=config.plan_replan_every,
                        seed=int(np.random.SeedSequence([seed, episode, 11]).generate_state(1)[0]))
    return asdict(cfg.resolved())


def plan_cells(config: ReproduceConfig, reps: list[Representation]) -> list[dict[str, Any]]:
    """The planning cells: {"name", "rep" (or None: the simulator's reward), "iterations", "goal" ("task" or
    "random")}, in table order."""
    cells = []
    for init in dict.fromkeys(r.init for r in reps):
        own = {r.objective: r for r in reps if r.init == init}
        for reward in config.plan_rewards:
            if reward in own:
                for it in config.plan_iterations:
                    cells.append({"name": f"{own[reward].label}, {it} it", "rep": own[reward], "iterations": it,
                                  "goal": "task"})
        if config.random_goal and "liv" in own:
            it = config.plan_iterations[0]
            cells.append({"name": f"{own['liv'].label}, {it} it, random goal", "rep": own["liv"], "iterations": it,
                          "goal": "random"})
    if config.oracle:
        for it in config.plan_iterations:
            cells.append({"name": f"simulator reward (oracle), {it} it", "rep": None, "iterations": it, "goal": "task"})
    return cells


def plan_jobs(config: ReproduceConfig, cells: list[dict[str, Any]], exclude: list[int],
              suite) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(kind, key, settings, job) of every planning episode of ``cells``."""
    import numpy as np

    from liv.sim.bc import eval_seeds

    max_steps = config.plan_max_steps or suite.plan_steps
    camera = config.camera or suite.default_camera
    out = []
    for cell in cells:
        for task in config.tasks:
            for seed in config.plan_seeds:
                layouts = eval_seeds(2000 + seed, task, config.plan_episodes, exclude)
                for i, env_seed in enumerate(layouts):
                    goal = suite.task_text(task)
                    if cell["goal"] == "random":
                        others = [suite.task_text(t) for t in suite.tasks if t != task]
                        goal = others[int(np.random.default_rng([seed, i, 9]).integers(len(others)))]
                    settings = {"rep": cell["rep"].key if cell["rep"] else "simulator", "goal": goal, "task": task,
                                "env_seed": env_seed, "planner": planner_settings(config, cell["iterations"], seed, i),
                                "max_steps": max_steps, "camera": camera, "size": [config.size, config.size]}
                    job = {**settings, "model": cell["rep"].model if cell["rep"] else None, "device": config.device,
                           "suite": suite.name, "cell": cell["name"], "seed": seed}
                    out.append(("plan", cell_key("plan", settings), settings, job))
    return out


# ------------------------------------------------------------------------------------------------- run

class Progress:
    """Counts finished units and estimates the time left from the mean time of each kind so far."""

    def __init__(self, config: ReproduceConfig, todo: dict[str, int], workers: int):
        self.config, self.todo, self.workers = config, dict(todo), workers
        self.done = {k: 0 for k in todo}
        self.seconds = {k: 0.0 for k in todo}
        self.t0 = time.perf_counter()

    def finished(self, kind: str, seconds: float, what: str) -> None:
        self.done[kind] += 1
        self.seconds[kind] += seconds
        known = [self.seconds[k] / self.done[k] for k in self.done if self.done[k]]
        left = sum((self.todo[k] - self.done[k]) * (self.seconds[k] / self.done[k] if self.done[k]
                                                     else sum(known) / len(known)) for k in self.todo)
        n, total = sum(self.done.values()), sum(self.todo.values())
        elapsed = time.perf_counter() - self.t0
        _say(self.config, f"[{n}/{total}] {what} ({seconds:.0f} s; elapsed {_hms(elapsed)}, "
                          f"about {_hms(left / self.workers)} left)")


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_cells(config: ReproduceConfig, store: CellStore, jobs: list[tuple[str, str, dict[str, Any], dict[str, Any]]]
              ) -> dict[str, Any]:
    """Results by key of ``jobs``: cached ones read, the others computed in ``config.workers`` processes and
    stored as each finishes."""
    from liv.sim.reproduce.units import run_units

    results, missing, settings_of, jobs_of = {}, [], {}, {}
    for kind, key, settings, job in jobs:
        found = store.get(kind, key)
        if found is not None:
            results[key] = found
        elif key not in settings_of:
            missing.append((kind, key, job))
            settings_of[key], jobs_of[key] = settings, job
    if not missing:
        return results
    counts: dict[str, int] = {}
    for kind, _, _ in missing:
        counts[kind] = counts.get(kind, 0) + 1
    _say(config, f"{len(jobs) - len(missing)} cells cached, {len(missing)} to compute: "
                 + ", ".join(f"{n} {k}" for k, n in counts.items()))
    progress = Progress(config, counts, max(1, config.workers))
    for kind, key, result, seconds in run_units(missing, config.workers):
        store.put(kind, key, settings_of[key], result)
        results[key] = result
        job = jobs_of[key]
        if kind == "lcbc":
            rate = sum(sum(v) for v in result["tasks"].values()) / max(1, sum(len(v) for v in result["tasks"].values()))
            what = f"LCBC {job['label']} ({job['conditioning']}, seed {job['seed']}): {100 * rate:.0f}% success"
        else:
            what = f"plan {job['cell']} {job['task']} layout {job['env_seed']}: " \
                   f"{'success' if result['success'] else 'failure'}"
        progress.finished(kind, seconds, what)
    return results

"""Generate a LeRobot v3.0 dataset of language-annotated simulated episodes with a suite's scripted experts.

Any suite of :mod:`liv.sim.suite` (Meta-World, the kitchen): each expert episode runs the suite's
scripted expert from a fresh start state (Meta-World: object and goal positions; the kitchen: arm
joints) drawn from a seed derived from (seed, task, kind, episode index), records every ``record_every``-th
frame with the proprioceptive state (the suite's state_names), the action taken there and the per-frame success
flag, and stops ``hold_steps`` steps after the first success (or on the last solved frame if the
success does not last that long), so that the last frame shows the goal (LIV's whole-episode sampling
takes the last frame as the goal). ``failures`` adds episodes per task
that do not succeed, of the kinds asked for (:data:`FAILURE_KINDS`: smooth random motion, the expert
giving up part way and wandering off, the expert stopping part way, the expert with action noise, the
expert of the same scene's opposite task).
The simulator's reward is recorded per frame (``next.reward``), and the task's ground-truth progress in
[0, 1] (``task_progress``: :meth:`liv.sim.suite.SimEnv.progress`; Meta-World: the fraction of the
object's start distance to its target covered; the kitchen: the task joint's fraction of its goal).

Generation is resumable: episodes are written one by one, atomically, to a staging folder next to
``out`` (``<out>.partial``) and the LeRobot dataset is assembled from them at the end; a rerun with
the same settings reuses every staged episode (more tasks or episodes may be asked for). The settings
and per-episode provenance (env seeds, attempts, lengths) are kept in ``meta/liv_generation.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from liv.data.episodes import DataError
from liv.sim.metaworld.tasks import DEFAULT_TASKS  # noqa: F401 (re-exported: the default suite's default tasks)
from liv.sim.suite import Suite, suite_of

MAX_ATTEMPTS = 5
"""Layouts tried per episode before keeping an expert episode that failed (or a failure that succeeded)."""
_FORMAT = 3  # bump when a staged episode's contents change meaning, so old staging is not reused (3: progress)
_KINDS = {"expert": 0, "failure": 1}
FAILURE_KINDS = ("random", "gave_up", "stopped", "noisy", "opposite")
"""How a failure episode fails: random: smooth random motion; gave_up: the expert for 20-60% of the steps,
then smooth random motion; stopped: the expert for 30-70% of the steps, then no motion (zero actions);
noisy: the expert with Gaussian action noise (std :data:`NOISE_STD`) in a layout where that fails;
opposite: the expert of the same scene's opposite task (``TaskSpec.opposite``: closing the drawer that
should be opened), for tasks that have one."""
DEFAULT_FAILURE_KINDS = ("random", "gave_up")
NOISE_STD = 0.8
"""Std of the noisy kind's action noise (actions are in [-1, 1]); at 0.8 most Meta-World expert episodes fail."""


def episode_seed(seed: int, task: str, kind: str, index: int, attempt: int = 0) -> int:
    """The environment seed (uint32 as int) of one episode attempt; stable across runs and platforms."""
    # crc32 rather than hash(): Python salts str hashes per process.
    entropy = [int(seed), zlib.crc32(task.encode()), _KINDS[kind], int(index), int(attempt)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


# ------------------------------------------------------------------------------------------- rollouts

def _failure_actions(env, rng: np.random.Generator, length: int, kind: str, action_dim: int,
                     opposite: str | None = None) -> Callable[[np.ndarray, int], Any]:
    """The action function of a failure episode of ``kind`` (one of :data:`FAILURE_KINDS`; ``opposite``:
    the task whose expert acts in the opposite kind)."""
    share = {"random": (0.0, 0.0), "gave_up": (0.2, 0.6), "stopped": (0.3, 0.7), "noisy": (1.0, 1.0),
             "opposite": (0.0, 0.0)}[kind]
    expert_steps = int(rng.uniform(*share) * length)
    state = {"a": rng.uniform(-1, 1, action_dim)}

    def act(obs: np.ndarray, step: int) -> np.ndarray:
        if kind == "opposite":
            return env.expert_action(obs, task=opposite)
        if kind == "noisy":
            noisy = env.expert_action(obs) + NOISE_STD * rng.standard_normal(action_dim)
            return np.clip(noisy, -1, 1).astype(np.float32)
        if step < expert_steps:
            return env.expert_action(obs)
        if kind == "stopped":
            return np.zeros(action_dim, np.float32)
        # An AR(1) walk: random but smooth, so the arm sweeps around instead of jittering in place.
        a = 0.85 * state["a"] + 0.5 * rng.standard_normal(action_dim)
        state["a"] = np.clip(a, -1, 1)
        return state["a"].astype(np.float32)
    return act


def _rollout(task: str, kind: str, index: int, env_seed: int, camera: str, size: tuple[int, int],
             max_steps: int, record_every: int, hold_steps: int, suite: Suite | None = None,
             failure_kind: str = "random") -> dict[str, Any]:
    """Run one episode -> {frames (T,H,W,3) uint8, actions (T,A) f32, states (T,S) f32, success (T,) bool,
    rewards (T,) f32, progress (T,) f32 (frame t's task progress), steps, first_success (step or -1),
    render_seconds}. Frames are kept after every
    record_every-th step, after every step once an expert has succeeded, and at the end; actions[t] is the
    action chosen at frame t (the last frame's is not executed). rewards[t] is the simulator's reward of
    the last step before frame t+1 (LeRobot's ``next.reward``; Meta-World's shaped reward, the kitchen's
    task progress); the last frame, whose action is not executed, repeats the reward of the step into it.
    ``steps``: steps up to the last frame."""
    suite = suite or suite_of([task])
    rng = np.random.default_rng(env_seed)
    with suite.make_env(task, env_seed, camera=camera, size=size) as env:
        limit = min(max_steps, env.max_steps)
        low, high = suite.failure_steps
        length = limit if kind == "expert" else min(limit, int(rng.integers(low, high + 1)))
        policy = (lambda obs, step: env.expert_action(obs)) if kind == "expert" else \
            _failure_actions(env, rng, length, failure_kind, suite.action_dim, suite.tasks[task].opposite)
        render_seconds = 0.0

        def render() -> np.ndarray:
            nonlocal render_seconds
            t0 = time.perf_counter()
            frame = env.render()
            render_seconds += time.perf_counter() - t0
            return frame

        def finished(step: int, success: bool) -> bool:
            if step >= length:
                return True
            # An expert stops hold_steps after its first success, or as soon as it loses it (some tasks,
            # e.g. handle-press, spring back), so that its episode ends on a solved frame either way.
            return kind == "expert" and first >= 0 and (step >= first + hold_steps or not success)

        def recorded(step: int) -> bool:
            return step % record_every == 0 or (kind == "expert" and first >= 0)  # all frames once solved

        obs = env.reset()
        success = env.is_success()
        frames, states, flags, actions, progress = [render()], [env.proprio(obs)], [success], [], [env.progress()]
        into = [0.0]  # into[t]: the reward of the step into frame t
        first = 0 if success else -1
        step = 0
        while not finished(step, success):
            action = policy(obs, step)
            if recorded(step):  # the action chosen at a recorded frame
                actions.append(action)
            obs, reward, _, _, info = env.step(action)
            step, success = step + 1, info["success"]
            if success and first < 0:
                first = step
            if recorded(step) or finished(step, success):
                frames.append(render())
                states.append(env.proprio(obs))
                flags.append(success)
                into.append(float(reward))
                progress.append(env.progress())
        if kind == "expert" and first >= 0 and not success:
            # Success lost: end on the frame before, the last solved one (its action is already recorded).
            frames.pop(), states.pop(), flags.pop(), into.pop(), progress.pop()
            step -= 1
        else:
            actions.append(policy(obs, step))  # the last frame's action: chosen, never executed
    rewards = np.asarray(into[1:] + into[-1:], dtype=np.float32)
    return {"frames": np.stack(frames), "actions": np.stack(actions).astype(np.float32),
            "states": np.stack(states).astype(np.float32), "success": np.asarray(flags, dtype=bool),
            "rewards": rewards, "progress": np.asarray(progress, dtype=np.float32), "steps": step,
            "first_success": first, "render_seconds": render_seconds}


def _make_episode(job: dict[str, Any]) -> dict[str, Any]:
    """Generate one staged episode (trying up to MAX_ATTEMPTS layouts) and write it -> its provenance."""
    task, kind, index = job["task"], job["kind"], job["index"]
    suite = suite_of([task], job["suite"])
    for attempt in range(MAX_ATTEMPTS):
        env_seed = episode_seed(job["seed"], task, kind, index, attempt)
        ep = _rollout(task, kind, index, env_seed, job["camera"], tuple(job["size"]), job["max_steps"],
                      job["record_every"], job["hold_steps"], suite=suite,
                      failure_kind=job.get("failure_kind", "random"))
        if (bool(ep["success"][-1]) if kind == "expert" else ep["first_success"] < 0):
            break
    if kind == "failure" and ep["success"].any():
        # Every layout was solved by accident: keep only the frames before the first success.
        keep = int(np.argmax(ep["success"]))
        if keep < 2:
            raise RuntimeError(f"{task}: no layout gave a failure episode (solved from the start)")
        for key in ("frames", "actions", "states", "success", "rewards", "progress"):
            ep[key] = ep[key][:keep]
    record = {"task": task, "kind": kind, "index": index, "env_seed": env_seed, "attempt": attempt,
              **({"failure_kind": job["failure_kind"]} if kind == "failure" else {}),
              "steps": ep["steps"], "frames": len(ep["frames"]), "first_success": ep["first_success"],
              "success": bool(ep["success"][-1]), "render_seconds": ep["render_seconds"]}
    path = Path(job["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, frames=ep["frames"], actions=ep["actions"], states=ep["states"],
                            success=ep["success"], rewards=ep["rewards"], progress=ep["progress"],
                            record=np.array(json.dumps(record)))
    os.replace(tmp, path)  # atomic: a staged file is either complete or absent
    return record


RENDERING_KEYS = ("simulator", "camera", "size", "record_every")
"""Keys of a rendering record: how a dataset's frames were made, and so what a model trained on them saw."""


def rendering_settings(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """How the frames of a dataset written by :func:`generate_dataset` were rendered -> {"simulator": the
    suite's name ("metaworld", "kitchen"), "camera": str, "size": [height, width] px, "record_every":
    simulation steps per frame}, or None when ``root`` is not such a dataset (no
    ``meta/liv_generation.json``). Raises DataError naming the file when that record is unreadable or
    lacks the settings."""
    path = Path(root) / "meta" / "liv_generation.json"
    if not path.is_file():
        return None
    try:
        request = json.loads(path.read_text())["request"]
        # Records written before the kitchen suite existed name no suite: they are Meta-World's.
        return {"simulator": str(request.get("suite", "metaworld")), "camera": str(request["camera"]),
                "size": [int(v) for v in request["size"]], "record_every": int(request["record_every"])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(str(path), f"unreadable generation record ({type(e).__name__}: {e})") from None


# ------------------------------------------------------------------------------------------ dataset

def _staged_record(path: Path) -> dict[str, Any] | None:
    """The provenance of a staged episode, or None if the file is missing or unreadable (regenerate it)."""
    try:
        with np.load(path) as z:
            return json.loads(str(z["record"]))
    except (OSError, ValueError, KeyError, zlib.error):
        return None


def generate_dataset(tasks: Sequence[str] = DEFAULT_TASKS, episodes_per_task: int = 20, seed: int = 0,
                     out: str | os.PathLike[str] = "metaworld_liv", camera: str | None = None,
                     size: tuple[int, int] | None = None, max_steps: int | None = None, record_every: int = 1,
                     failures: int = 0, progress: bool = True, *, hold_steps: int = 5, workers: int = 1,
                     suite: str | None = None, on_episode: Callable[[dict[str, Any]], None] | None = None,
                     failure_kinds: Sequence[str] = DEFAULT_FAILURE_KINDS) -> Path:
    """Simulate scripted episodes of a suite's tasks and write them as a LeRobot v3.0 dataset at ``out`` -> ``out``.

    ``tasks``: names from a suite's task table (:mod:`liv.sim.suite`; all of one suite, ``suite`` if
    given); ``episodes_per_task`` expert episodes (each retried in up to MAX_ATTEMPTS start states until
    it succeeds) and ``failures`` unsuccessful ones per task; ``seed``: every episode's start derives from
    (seed, task, kind, index). ``camera`` (default: the suite's first) and ``size`` (height, width) in
    pixels (default: the suite's; Meta-World's 128 is twice the demo model's 64 px input, an exact 2x
    downscale, yet usable by larger models, for ~1.5x the render time of 64 px: 51 vs 80 frames/s).
    ``max_steps``: the step limit of an episode (default: the suite's episode_steps: Meta-World 200, its
    experts need up to ~130); ``record_every``: keep every k-th frame (fps = 1 / (k * step seconds),
    rounded: Meta-World 80 / k; frames after an expert's first success and the final frame are always
    kept); ``hold_steps``: steps simulated after the first success. ``workers``: processes simulating in
    parallel (each renders on its own OpenGL context). ``on_episode(record)``: called after each episode
    is staged or found staged (``record["reused"]``). The LeRobot features are
    ``observation.images.<camera>``, ``observation.state`` (the suite's state_names; Meta-World: hand xyz
    in m, gripper opening), ``action`` (its action_names), ``next.success`` (frame t shows a solved task)
    ``next.reward`` (the simulator's reward after frame t's action, see :func:`_rollout`) and
    ``task_progress`` (frame t's ground-truth progress in [0, 1], the module docstring's rule).
    ``failure_kinds``: the kinds of the failure episodes, in turn (:data:`FAILURE_KINDS`); each episode's
    kind is in ``meta/liv_generation.json`` (``failure_kind``).

    Raises ValueError for unknown tasks, cameras or out-of-range settings, DataError for an output folder
    that holds something else.
    """
    from liv.data.lerobot_write import write_lerobot

    chosen = suite_of(tasks, suite)
    tasks = chosen.check_tasks(tasks)
    camera = chosen.check_camera(camera or chosen.default_camera)
    size = size or chosen.default_size
    max_steps = chosen.episode_steps if max_steps is None else max_steps
    height, width = (int(v) for v in size)
    if height % 2 or width % 2 or height < 16 or width < 16:
        raise ValueError(f"size must be an even (height, width) of at least 16 px (the video is yuv420p), got {size}")
    failure_kinds = list(failure_kinds)
    bad = [k for k in failure_kinds if k not in FAILURE_KINDS]
    if bad or not failure_kinds:
        raise ValueError(f"failure kinds must be some of {', '.join(FAILURE_KINDS)}; got {failure_kinds}")
    alone = [t for t in tasks if chosen.tasks[t].opposite is None]
    if failures and "opposite" in failure_kinds and alone:
        paired = [t for t, spec in chosen.tasks.items() if spec.opposite is not None]
        raise ValueError(f"failure kind opposite needs tasks with an opposite task in the same scene; "
                         f"{', '.join(alone)} {'has' if len(alone) == 1 else 'have'} none (tasks with one: "
                         f"{', '.join(paired) or 'none in this suite'})")
    if episodes_per_task < 1 or failures < 0 or max_steps < 1 or record_every < 1 or hold_steps < 0 or workers < 1:
        raise ValueError("episodes_per_task, max_steps, record_every and workers must be >= 1; failures and "
                         "hold_steps >= 0")
    out = Path(out)
    settings = {"format": _FORMAT, "suite": chosen.name, "seed": int(seed), "camera": camera, "size": [height, width],
                "max_steps": int(max_steps), "record_every": int(record_every), "hold_steps": int(hold_steps),
                "failure_kinds": failure_kinds, "versions": _versions(chosen.packages)}
    request = {**settings, "tasks": tasks, "episodes_per_task": int(episodes_per_task), "failures": int(failures)}
    stage = out.with_name(out.name + ".partial")
    record_path = out / "meta" / "liv_generation.json"
    if (out / "meta" / "info.json").is_file():
        if record_path.is_file() and _with_suite(json.loads(record_path.read_text())["request"]) == request:
            _say(progress, f"{out} is complete already (same settings): nothing to do")
            return out
        raise DataError(str(out), "a dataset exists there already; choose another output folder or delete it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not (stage / "settings.json").is_file():
        raise DataError(str(out), "exists and is not empty; generated datasets are written to a new folder")
    stage.mkdir(parents=True, exist_ok=True)
    settings_path = stage / "settings.json"
    if settings_path.is_file():
        old = _with_suite(json.loads(settings_path.read_text()))
        if old != settings:
            if old.get("format") != settings["format"]:
                raise DataError(str(stage), "staged episodes were made by an older liv (they lack what this one "
                                            "records); delete this folder and generate again")
            changed = sorted(k for k in settings if old.get(k) != settings[k])
            raise DataError(str(stage), f"staged episodes were made with other settings ({', '.join(changed)}); "
                                        "rerun with the same ones to resume, or delete this folder to start over")
    else:
        settings_path.write_text(json.dumps(settings, indent=2))

    jobs = [{**settings, "task": t, "kind": kind, "index": i, "size": [height, width],
             "failure_kind": failure_kinds[i % len(failure_kinds)], "path": str(stage / t / f"{kind}-{i:05d}.npz")}
            for t in tasks for kind, n in (("expert", episodes_per_task), ("failure", failures)) for i in range(n)]
    records: dict[str, dict] = {}
    todo = []
    for job in jobs:
        rec = _staged_record(Path(job["path"]))
        if rec is None:
            todo.append(job)
        else:
            records[job["path"]] = rec
            if on_episode is not None:
                on_episode({**rec, "reused": True})

    from tqdm.auto import tqdm

    started = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="simulating", unit="episode",
               disable=None if progress else True)
    frames_done, render_done = 0, 0.0
    try:
        results = ((job, _make_episode(job)) for job in todo) if workers == 1 else _parallel(todo, workers)
        for job, rec in results:
            records[job["path"]] = rec
            frames_done, render_done = frames_done + rec["frames"], render_done + rec["render_seconds"]
            bar.set_postfix_str(f"{job['task']}, render {frames_done / max(render_done, 1e-9):.0f} frames/s")
            bar.update()
            if on_episode is not None:
                on_episode({**rec, "reused": False})
    finally:
        bar.close()
    elapsed = time.perf_counter() - started

    if out.exists() and any(out.iterdir()):
        # An assembly interrupted earlier (no meta/info.json yet) left LeRobot files: redo it. Anything
        # else in the folder is not ours to delete.
        foreign = sorted(p.name for p in out.iterdir() if p.name not in ("meta", "data", "videos"))
        if foreign:
            raise DataError(str(out), f"is not empty ({', '.join(foreign)}); generated datasets are written to a "
                                      "new folder")
        shutil.rmtree(out)

    def staged_episodes():
        for job in jobs:
            with np.load(job["path"]) as z:
                yield {"frames": z["frames"], "task": chosen.task_text(job["task"]), "actions": z["actions"],
                       "states": z["states"], "success": z["success"], "rewards": z["rewards"],
                       "progress": z["progress"]}

    fps = max(1, round(1 / (chosen.step_seconds * record_every)))
    write_lerobot(out, staged_episodes(), fps=fps, camera=f"observation.images.{camera}", version="v3.0",
                  robot_type=chosen.robot_type, action_names=chosen.action_names, state_names=chosen.state_names)
    ordered = [records[job["path"]] for job in jobs]
    summary = {"episodes": len(ordered), "frames": sum(r["frames"] for r in ordered),
               "generated_episodes": len(todo), "simulation_seconds": round(elapsed, 2),
               "render_fps": round(frames_done / render_done, 1) if render_done else None}
    record_path.write_text(json.dumps({"request": request, "summary": summary, "episodes": ordered}, indent=1))
    shutil.rmtree(stage)
    rate = f", rendering {summary['render_fps']} frames/s per process" if render_done else ""
    _say(progress, f"wrote {out}: {summary['episodes']} episodes, {summary['frames']} frames; simulated "
                   f"{len(todo)} in {elapsed:.1f} s{rate}")
    return out


def _parallel(jobs: list[dict], workers: int):
    """(job, record) for each of ``jobs`` as ``workers`` spawned processes finish them."""
    import multiprocessing
    from concurrent.futures import as_completed

    # spawn, not fork: a forked child would share the parent's OpenGL/EGL state.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_make_episode, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        # On an error or interrupt: drop the queued episodes, let running ones finish (they stage atomically).
        pool.shutdown(wait=True, cancel_futures=True)


def _with_suite(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings recorded before suites existed name none: they were Meta-World's."""
    return {"suite": "metaworld", **settings} if "suite" not in settings else settings


def _versions(packages: Sequence[str]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, flush=True)

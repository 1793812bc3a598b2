"""The units of work of `liv reproduce` that run in worker processes: one LCBC policy, one planning episode.

A unit is a plain dict (picklable, JSON-serialisable) and returns a JSON-serialisable result; the main
process stores results as cells (:mod:`liv.sim.reproduce.cells`), so workers never write to the cache.
Workers are spawned (not forked: a forked child would share the parent's OpenGL state) with one torch
thread each, and keep the models they loaded for the next unit.
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

_MODELS: dict[tuple[str, str], Any] = {}
_DATA: dict[str, Any] = {}


def _init_worker() -> None:
    from liv.sim import rendering

    rendering.choose_gl()
    import torch

    torch.set_num_threads(1)


def _model(spec: str, device: str):
    import liv

    if (spec, device) not in _MODELS:
        _MODELS[(spec, device)] = liv.load(spec, device=device)
    return _MODELS[(spec, device)]


def _dataset(root: str):
    from liv.data.lerobot import read_lerobot

    if root not in _DATA:
        _DATA[root] = read_lerobot(root)
    return _DATA[root]


def run_lcbc_unit(job: dict[str, Any]) -> dict[str, Any]:
    """Train one LCBC policy and roll it out -> {"tasks": {task: [success bool per rollout]}, "checkpoint",
    "train_seconds", "final_loss", "seconds"}.

    ``job``: model, device, data, cache (embedding cache folder), conditioning, seed, steps, batch_size,
    hidden, proprio, rollouts, checkpoint ("final" or "best"), max_steps, eval_seed, exclude, camera,
    size, tasks, suite."""
    from liv.sim.bc import embed_dataset, evaluate_policy, train_policy

    t0 = time.perf_counter()
    model = _model(job["model"], job["device"])
    emb = embed_dataset(model, _dataset(job["data"]), job["cache"])
    half = max(1, job["steps"] // 2)
    res = train_policy(emb, job["conditioning"], job["proprio"], job["hidden"], job["steps"], job["batch_size"],
                       seed=job["seed"], snapshot_at=(half,), device=job["device"])
    states = {"final": res.policy.state_dict()}
    if job["checkpoint"] == "best":
        states["half"] = res.snapshots[half]
    evals = {}
    for name, state in states.items():
        policy = copy.deepcopy(res.policy)
        policy.load_state_dict(state)
        evals[name] = evaluate_policy(policy, model, job["tasks"], job["eval_seed"], job["rollouts"], job["max_steps"],
                                      job["camera"], tuple(job["size"]), job["exclude"], suite=job["suite"])
    best = max(evals, key=lambda k: (evals[k]["average"], k == "final"))
    return {"tasks": {t: [bool(s) for s in r["successes"]] for t, r in evals[best]["tasks"].items()},
            "env_seeds": {t: r["env_seeds"] for t, r in evals[best]["tasks"].items()}, "checkpoint": best,
            "train_seconds": res.seconds, "final_loss": res.losses[-1], "seconds": time.perf_counter() - t0}


def run_plan_unit(job: dict[str, Any]) -> dict[str, Any]:
    """Plan one episode -> {"success", "steps", "first_success", "values", "plan_seconds", "env_seed", "goal",
    "seconds"}.

    ``job``: model (None: the simulator's reward, :class:`~liv.sim.planning.SimRewardScorer`), device, goal
    (text), planner (PlannerConfig fields), task, env_seed, max_steps, camera, size, suite."""
    from liv.sim.planning import LIVScorer, PlannerConfig, SimRewardScorer, run_episode
    from liv.sim.suite import get_suite

    t0 = time.perf_counter()
    if job["model"] is None:
        scorer = SimRewardScorer()
    else:
        scorer = LIVScorer(_model(job["model"], job["device"]), job["goal"])  # the model encodes without grad
    suite = get_suite(job["suite"])
    with suite.make_env(job["task"], job["env_seed"], camera=job["camera"], size=tuple(job["size"])) as env:
        rec = run_episode(env, scorer, PlannerConfig(**job["planner"]), job["max_steps"])
    return {"success": bool(rec["success"]), "steps": rec["steps"], "first_success": rec["first_success"],
            "values": [float(v) for v in rec["values"]], "plan_seconds": rec["plan_seconds"],
            "env_seed": job["env_seed"], "goal": job["goal"], "seconds": time.perf_counter() - t0}


UNITS = {"lcbc": run_lcbc_unit, "plan": run_plan_unit}
"""Unit functions by kind."""


def run_units(jobs: Iterable[tuple[str, str, dict[str, Any]]], workers: int) -> Iterator[tuple[str, str, Any, float]]:
    """Run (kind, key, job) units -> (kind, key, result, seconds) as they finish.

    ``workers`` 1 runs them here in order; more runs them in that many spawned processes. On an error or
    an interrupt the queued units are dropped and running ones finish, then the error propagates."""
    jobs = list(jobs)
    if workers <= 1:
        _init_worker()
        for kind, key, job in jobs:
            t0 = time.perf_counter()
            result = UNITS[kind](job)
            yield kind, key, result, time.perf_counter() - t0
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
    try:
        pending = {}
        queue = iter(jobs)
        for kind, key, job in queue:  # keep the pool just full, so an interrupt loses little queued work
            pending[pool.submit(_timed, kind, job)] = (kind, key)
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                kind, key = pending.pop(future)
                result, seconds = future.result()
                yield kind, key, result, seconds
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(_timed, nxt[0], nxt[2])] = (nxt[0], nxt[1])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _timed(kind: str, job: dict[str, Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    return UNITS[kind](job), time.perf_counter() - t0

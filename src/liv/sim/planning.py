"""Reward-guided planning with ground-truth simulation (the paper's appendix E): CEM and MPPI.

At each replanning point the planner saves the environment's state, rolls candidate action sequences out
from it in the same simulator (get_state / set_state), renders their frames, and scores each sequence by
the LIV reward against the task's TEXT goal. With the undiscounted potential-based reward
R_t = S(o_t+1) - S(o_t), the sum over a horizon telescopes to S(o_H) - S(o_0): only the final frame of
each candidate needs rendering and embedding (``score="final"``, the default and the cheapest). With a
discount gamma < 1 it does not telescope: sum_t gamma^t (S_t+1 - S_t) = gamma^(H-1) S_H - S_0 +
sum_{t=1}^{H-1} (gamma^(t-1) - gamma^t) S_t, which also credits reaching high-value frames early; that is
``score="discounted"``, computed from frames rendered every ``render_every`` steps (one discount step
per rendered interval, an approximation when ``render_every`` > 1). The first ``replan_every`` actions of
the best plan are executed (receding horizon) until success or ``max_steps``.

A planner only sees a :class:`Scorer` (values of states), so tests can inject a known objective (e.g.
the hand's distance to a point) and check the optimiser itself. Defaults are the paper's sample counts
(CEM: horizon 20, 200 samples; MPPI: horizon 50, 128 samples); other values are ours. On a CPU one CEM
iteration at the paper's size costs ~4000 simulator steps (~4 s) plus 200 renders (~2.5 s at 64 px).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from liv.sim.planner_config import PlannerConfig  # re-exported: defined apart, numpy- and torch-free

if TYPE_CHECKING:
    from liv.model import LIVModel


class Scorer(Protocol):
    """Values of N states: ``needs_frames`` says whether it reads rendered frames (else frames is None)."""

    needs_frames: bool

    def __call__(self, frames: np.ndarray | None, states: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames or None, (N, S) float32 proprio states -> (N,) float64 values."""
        ...


class LIVScorer:
    """The LIV value S(phi(o), psi(goal)): cosine similarity of frame embeddings with the goal text's."""

    needs_frames = True

    def __init__(self, model: LIVModel, goal: str, batch_size: int = 256):
        self.model, self.batch_size = model, batch_size
        self.goal = torch.nn.functional.normalize(model.encode_goal(goal), dim=-1)
        self.frames_scored = 0

    def __call__(self, frames: np.ndarray | None, states: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames -> (N,) float64 cosine similarities in [-1, 1]."""
        emb = torch.nn.functional.normalize(self.model.encode_images(frames, batch_size=self.batch_size), dim=-1)
        self.frames_scored += len(frames)
        return (emb @ self.goal).double().cpu().numpy()


class StateScorer:
    """A value computed from proprioception only (no rendering), e.g. -distance of the hand to a point."""

    needs_frames = False

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, frames: np.ndarray | None, states: np.ndarray) -> np.ndarray:
        """(N, S) float32 states -> (N,) float64 values of ``fn``."""
        return np.asarray(self.fn(states), dtype=np.float64).reshape(len(states))


class SimRewardScorer:
    """The simulator's own dense reward (Meta-World's shaped reward, the kitchen's task progress), summed over
    a candidate's steps: an oracle for testing what a planner can do with a perfect reward. Its values of
    states are 0 (it scores candidates only through :func:`score_candidates`)."""

    needs_frames = False
    uses_sim_reward = True

    def __call__(self, frames: np.ndarray | None, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(states), dtype=np.float64)


def score_candidates(env, start, plans: np.ndarray, scorer: Scorer, config: PlannerConfig,
                     start_value: float) -> tuple[np.ndarray, int]:
    """Roll each (N, H, A) plan out from ``start`` (a SimState) and score it -> ((N,) scores, sim steps).

    ``start_value``: S(o_0) of the start state. The env is left in the last candidate's end state. A
    scorer with ``uses_sim_reward`` (:class:`SimRewardScorer`) scores each plan by its summed env rewards.
    """
    n, horizon = plans.shape[:2]
    if getattr(scorer, "uses_sim_reward", False):
        sums = np.zeros(n)
        for i, plan_i in enumerate(plans):
            env.set_state(start)
            for t in range(horizon):
                sums[i] += env.step(plan_i[t])[1]
        return sums, n * horizon
    if config.score == "final":
        marks = [horizon]
    else:
        marks = sorted(set(range(config.render_every, horizon + 1, config.render_every)) | {horizon})
    frames, states = [], []
    for plan in plans:
        env.set_state(start)
        for t in range(horizon):
            obs, *_ = env.step(plan[t])
            if t + 1 in marks:
                frames.append(env.render() if scorer.needs_frames else None)
                states.append(env.proprio(obs))
    values = scorer(np.stack(frames) if scorer.needs_frames else None, np.stack(states)).reshape(n, len(marks))
    if config.score == "final":
        return values[:, -1] - start_value, n * horizon
    # Discounted sum of the rewards between consecutive rendered frames, one discount step per interval.
    prev = np.concatenate([np.full((n, 1), start_value), values[:, :-1]], axis=1)
    discounts = config.gamma ** np.arange(len(marks))
    return ((values - prev) * discounts).sum(1), n * horizon


def plan(env, scorer: Scorer, config: PlannerConfig, rng: np.random.Generator, warm: np.ndarray | None = None,
         start_value: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Optimise a (H, A) action sequence from the env's current state -> (best plan, stats).

    ``warm``: the previous plan shifted by the executed steps (used as the initial mean). The env's state
    is restored before returning. stats: best score, sim steps, seconds.
    """
    cfg = config.resolved()
    t0 = time.perf_counter()
    start = env.get_state()
    h = min(cfg.horizon, env.max_steps - start.steps)  # Meta-World refuses steps past its 500-step limit
    if start_value is None:
        start_value = _value_now(env, scorer)
    a = env.action_dim
    mean = np.zeros((h, a)) if warm is None else np.asarray(warm, dtype=np.float64)[:h]
    if len(mean) < h:
        mean = np.concatenate([mean, np.zeros((h - len(mean), a))])
    std = np.full((h, a), cfg.init_std)
    best_plan, best_score, sim_steps = mean.copy(), -np.inf, 0
    for _ in range(cfg.iterations):
        noise = rng.standard_normal((cfg.samples, h, a)) * std
        if cfg.planner == "mppi":
            for t in range(1, h):  # temporally correlated perturbations
                noise[:, t] = cfg.smoothing * noise[:, t - 1] + (1 - cfg.smoothing) * noise[:, t]
        plans = np.clip(mean + noise, -1.0, 1.0)
        plans[0] = np.clip(mean, -1.0, 1.0)  # always re-score the current mean: the best never gets worse
        scores, steps = score_candidates(env, start, plans, scorer, cfg, start_value)
        sim_steps += steps
        i = int(np.argmax(scores))
        if scores[i] > best_score:
            best_score, best_plan = float(scores[i]), plans[i].copy()
        if cfg.planner == "cem":
            elites = plans[np.argsort(scores)[-max(2, int(round(cfg.elite_frac * cfg.samples))):]]
            mean, std = elites.mean(0), np.maximum(elites.std(0), cfg.min_std)
        else:
            z = (scores - scores.max()) / (scores.std() + 1e-12) / cfg.temperature
            w = np.exp(z)
            mean = np.einsum("n,nhd->hd", w / w.sum(), plans)
    env.set_state(start)
    if cfg.planner == "mppi":
        best_plan = mean  # MPPI executes its weighted average, not a single sample
    return best_plan, {"score": best_score, "sim_steps": sim_steps, "seconds": time.perf_counter() - t0}


def _value_now(env, scorer: Scorer) -> float:
    frames = env.render()[None] if scorer.needs_frames else None
    return float(scorer(frames, env.proprio()[None])[0])


def run_episode(env, scorer: Scorer, config: PlannerConfig, max_steps: int = 100,
                stop_on_success: bool = True) -> dict[str, Any]:
    """Plan and act in ``env`` (reset here) for up to ``max_steps`` steps -> episode record.

    Record: success (the env's success flag at any executed step), steps, first_success (step or -1),
    values (S of the state after each replanning round, starting with o_0), states ((steps+1, S)
    proprioception), plan_seconds (per round), sim_steps, warm_start (steps of the approach sequence the
    first plan started from; 0 for none).

    With ``config.warm_start`` and an env that has ``approach_actions()`` (the kitchen's: a fixed
    open-loop sequence that brings the hand near the task object without doing the task, the paper's
    appendix E), the first plan's mean is that sequence (then zeros) instead of all zeros.
    """
    cfg = config.resolved()
    rng = np.random.default_rng(cfg.seed)
    env.reset()
    value = _value_now(env, scorer)
    values, states, plan_seconds = [value], [env.proprio()], []
    warm = env.approach_actions() if cfg.warm_start and hasattr(env, "approach_actions") else None
    warm_steps = 0 if warm is None else len(warm)
    step, first, sim_steps = 0, -1, 0
    while step < min(max_steps, env.max_steps):
        best, stats = plan(env, scorer, cfg, rng, warm, value)
        plan_seconds.append(stats["seconds"])
        sim_steps += stats["sim_steps"]
        k = min(cfg.replan_every, len(best), max_steps - step)
        for a in best[:k]:
            obs, _, _, _, info = env.step(a)
            step += 1
            states.append(env.proprio(obs))
            if info["success"] and first < 0:
                first = step
        warm = np.concatenate([best[k:], np.repeat(best[-1:], k, axis=0)])  # shifted, last action held
        value = _value_now(env, scorer)
        values.append(value)
        if first >= 0 and stop_on_success:
            break
    return {"success": first >= 0, "steps": step, "first_success": first, "values": values,
            "states": np.stack(states).tolist(), "plan_seconds": plan_seconds, "sim_steps": sim_steps,
            "warm_start": warm_steps}


def run_planning(model: LIVModel, tasks: Sequence[str], config: PlannerConfig, episodes: int = 5,
                 max_steps: int = 100, seeds: Sequence[int] = (0,), camera: str | None = None,
                 size: tuple[int, int] = (64, 64), log: Callable[[str], None] | None = None,
                 suite: str | None = None, random_goal: bool = False) -> dict[str, Any]:
    """Planning with the LIV text-goal reward in each task -> per-task success mean/std over ``seeds``.

    For each seed s, ``episodes`` layouts per task (env seeds from :func:`liv.sim.bc.eval_seeds` with base
    1000 + s, apart from the dataset generator's) are planned in with the planner seeded by (s, episode).
    ``suite``: the tasks' suite (default: the one they belong to); ``camera``: default its first.
    ``random_goal``: the paper's Table 9 control: each episode is scored against the text of another task
    of the suite, drawn at random (seeded by the planner seed, s and the episode), while success is still
    the episode's own task's; a reward that reads the text then loses its success.
    Returns {"tasks": {task: {"mean", "std", "per_seed"}}, "average": {...}, "episodes": [records, each
    with its "goal" text], "settings": {...}} with success rates in [0, 1].
    """
    from liv.sim.bc import eval_seeds
    from liv.sim.report import seed_summary
    from liv.sim.suite import suite_of

    say = log or (lambda message: None)
    cfg = config.resolved()
    chosen = suite_of(tasks, suite)
    camera = chosen.check_camera(camera or chosen.default_camera)
    if random_goal and len(chosen.tasks) < 2:
        raise ValueError(f"random goals need another task in {chosen.title}")
    rates: dict[str, list[float]] = {t: [] for t in tasks}
    records = []
    scorers: dict[str, LIVScorer] = {}
    for seed in seeds:
        for task in tasks:
            wins = []
            for i, env_seed in enumerate(eval_seeds(1000 + int(seed), task, episodes)):
                run_cfg = PlannerConfig(**{**asdict(cfg), "seed": int(np.random.SeedSequence([cfg.seed, seed, i])
                                                                       .generate_state(1)[0])})
                goal = chosen.task_text(task)
                if random_goal:
                    others = [chosen.task_text(t) for t in chosen.tasks if t != task]
                    goal = others[int(np.random.default_rng([cfg.seed, int(seed), i, 9]).integers(len(others)))]
                if goal not in scorers:
                    scorers[goal] = LIVScorer(model, goal)
                with chosen.make_env(task, env_seed, camera=camera, size=size) as env:
                    rec = run_episode(env, scorers[goal], run_cfg, max_steps)
                rec.update(task=task, seed=int(seed), env_seed=env_seed, goal=goal)
                records.append(rec)
                wins.append(rec["success"])
                say(f"{task} seed {seed} episode {i}: {'success' if rec['success'] else 'failure'} in "
                    f"{rec['steps']} steps, {np.mean(rec['plan_seconds']):.2f} s per plan"
                    + (f" (goal: {goal!r})" if random_goal else ""))
            rates[task].append(float(np.mean(wins)))
    average = [float(np.mean([rates[t][k] for t in tasks])) for k in range(len(seeds))]
    return {"tasks": {t: seed_summary(v) for t, v in rates.items()}, "average": seed_summary(average),
            "episodes": records, "settings": {**asdict(cfg), "suite": chosen.name, "random_goal": random_goal,
                                              "episodes": episodes, "max_steps": max_steps, "seeds": list(seeds),
                                              "camera": camera, "size": list(size)}}

"""Language-conditioned behaviour cloning (LCBC) on frozen LIV representations, as in the paper's appendix D.

A policy is an MLP (ReLU) on [phi(o), task, proprioception] -> action, where phi(o) is the frozen image
embedding of the current frame and the task is either the frozen text embedding psi(l) of its annotation
("text") or a one-hot vector over the training tasks ("onehot", the paper's "(One-Hot)" rows, which still
use the model's image embedding). It is trained with MSE on expert actions, Adam lr 1e-3, then run in
closed loop in the dataset's simulation suite (Meta-World, the kitchen) from start states it was not
trained on (:func:`evaluate_policy`); success means the suite's success test at any step.
:func:`run_bc` repeats this over training seeds, keeps the better of the half-way and final checkpoints
per seed, and reports mean and std over seeds.

The paper's settings (Table 5): Meta-World hidden [1024, 1024, 1024], batch 4096; FrankaKitchen hidden
[256, 256], batch 32; lr 1e-3, proprioception on, 50 rollouts per task, 3 seeds. The defaults here are
scaled down for a CPU ([256, 256], batch 256, 2000 steps, 10 rollouts per task).

Image embeddings of a dataset are computed once and cached on disk (:mod:`liv.sim.bc_embeddings`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from liv.sim.bc_embeddings import embed_dataset, model_fingerprint  # noqa: F401 (part of this module's API)

if TYPE_CHECKING:
    from liv.data.episodes import EpisodeDataset
    from liv.model import LIVModel

Conditioning = Literal["text", "onehot"]


# ---------------------------------------------------------------------------------------------- policy

@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads (restored afterwards); None leaves the setting alone."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class BCPolicy(nn.Module):
    """MLP policy: [image embedding (D,), task (D,) text embedding or (K,) one-hot, state (S,)] -> action.

    Inputs are standardised with fixed training-set statistics (buffers ``mean``/``std``) because raw CLIP
    embeddings of different models differ in scale by orders of magnitude, and one learning rate (1e-3)
    should suit all of them. ``task_texts``: the training tasks' annotations, in one-hot order.
    """

    def __init__(self, image_dim: int, task_dim: int, state_dim: int, action_dim: int,
                 hidden: Sequence[int] = (256, 256), conditioning: Conditioning = "text",
                 task_texts: Sequence[str] = ()):
        super().__init__()
        if conditioning not in ("text", "onehot"):
            raise ValueError(f"conditioning must be 'text' or 'onehot', got {conditioning!r}")
        self.conditioning, self.task_texts = conditioning, list(task_texts)
        self.dims = (int(image_dim), int(task_dim), int(state_dim), int(action_dim))
        self.hidden = [int(h) for h in hidden]
        layers: list[nn.Module] = []
        width = image_dim + task_dim + state_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, action_dim))
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(image_dim + task_dim + state_dim))
        self.register_buffer("std", torch.ones(image_dim + task_dim + state_dim))

    def inputs(self, image: torch.Tensor, task: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """Concatenate (B, D) image embeddings, (B, D or K) task vectors and (B, S) states -> (B, F)."""
        parts = [image, task] + ([state] if self.dims[2] else [])
        return torch.cat([p.float() for p in parts], dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F) unstandardised features (see :meth:`inputs`) -> (B, A) float32 actions (not clipped)."""
        return self.net((features - self.mean) / self.std)

    def task_vector(self, text: str, model: LIVModel | None = None) -> torch.Tensor:
        """The (D,) text embedding (needs ``model``) or (K,) one-hot vector of a task annotation."""
        if self.conditioning == "onehot":
            if text not in self.task_texts:
                raise ValueError(f"task {text!r} was not among the one-hot policy's training tasks: {self.task_texts}")
            return torch.nn.functional.one_hot(torch.tensor(self.task_texts.index(text)), len(self.task_texts)).float()
        if model is None:
            raise ValueError("a text-conditioned policy needs the language model to embed the task")
        return model.encode_texts([text])[0].cpu().float()


@dataclass
class TrainResult:
    """A trained policy, its loss curve and state-dict snapshots taken at chosen steps."""

    policy: BCPolicy
    """The policy after the last step (eval mode)."""
    losses: list[float]
    """Training MSE of each step's batch."""
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Step -> a copy of the policy's state dict after that step."""
    seconds: float = 0.0
    """Wall-clock training time."""


def training_rows(embeddings: dict[str, Any], only_successful: bool = True) -> np.ndarray:
    """(N,) bool: the frames :func:`bc_features` trains on (``only_successful``: those of successful episodes)."""
    keep_ep = np.asarray(embeddings["succeeded"], bool) if only_successful else np.ones(len(embeddings["texts"]), bool)
    return keep_ep[embeddings["episode"]]


def bc_features(embeddings: dict[str, Any], conditioning: Conditioning = "text", proprio: bool = True,
                only_successful: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Training matrix from :func:`embed_dataset` output -> ((N, F) float32 features, (N, A) float32 actions,
    task texts in one-hot order). ``only_successful``: drop frames of episodes that never succeed (failure
    episodes are not demonstrations)."""
    keep_ep = np.asarray(embeddings["succeeded"], bool) if only_successful else np.ones(len(embeddings["texts"]), bool)
    rows = training_rows(embeddings, only_successful)
    if not rows.any():
        raise ValueError("no successful episode to clone")
    texts = [str(t) for t in embeddings["texts"]]
    task_texts = list(dict.fromkeys(t for t, k in zip(texts, keep_ep) if k))
    ep = embeddings["episode"][rows]
    if conditioning == "text":
        task = torch.from_numpy(np.asarray(embeddings["text"], np.float32)[ep])
    else:
        index = torch.tensor([task_texts.index(texts[i]) for i in ep])
        task = torch.nn.functional.one_hot(index, len(task_texts)).float()
    parts = [torch.from_numpy(np.asarray(embeddings["image"], np.float32)[rows]), task]
    if proprio:
        parts.append(torch.from_numpy(np.asarray(embeddings["states"], np.float32)[rows]))
    return torch.cat(parts, 1), torch.from_numpy(np.asarray(embeddings["actions"], np.float32)[rows]), task_texts


def train_policy(embeddings: dict[str, Any], conditioning: Conditioning = "text", proprio: bool = True,
                 hidden: Sequence[int] = (256, 256), steps: int = 2000, batch_size: int = 256, lr: float = 1e-3,
                 seed: int = 0, snapshot_at: Sequence[int] = (), only_successful: bool = True,
                 device: str | torch.device = "cpu", num_threads: int | None = None,
                 weights: np.ndarray | None = None) -> TrainResult:
    """Train a :class:`BCPolicy` by MSE regression of expert actions -> :class:`TrainResult`.

    ``embeddings``: from :func:`embed_dataset`; ``steps`` Adam steps (lr 1e-3, the paper's) on batches of
    ``batch_size`` frames drawn uniformly with replacement; ``seed`` fixes initialisation and batches
    (the global torch RNG is left untouched); ``snapshot_at``: steps (1-based) after which the state
    dict is copied (e.g. the half-way checkpoint). Paper: hidden (1024, 1024, 1024), batch 4096.
    ``num_threads``: torch CPU threads while training (restored after; None: leave torch's setting). 1 is
    fastest for small policies on a busy CPU (measured 1.4 vs 21 ms per step with 2 threads on 2 loaded cores).
    ``weights``: (N,) non-negative per-frame weights over all embedded frames (reward-weighted regression,
    :mod:`liv.sim.bc_weights`): a batch's loss is sum_i w_i mse_i / sum_i w_i; None: the plain mean.
    """
    with torch_threads(num_threads):
        return _train(embeddings, conditioning, proprio, hidden, steps, batch_size, lr, seed, snapshot_at,
                      only_successful, device, weights)


def _train(embeddings: dict[str, Any], conditioning: Conditioning, proprio: bool, hidden: Sequence[int], steps: int,
           batch_size: int, lr: float, seed: int, snapshot_at: Sequence[int], only_successful: bool,
           device: str | torch.device, weights: np.ndarray | None = None) -> TrainResult:
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    x, y, task_texts = bc_features(embeddings, conditioning, proprio, only_successful)
    w = None
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        if weights.shape != (len(embeddings["episode"]),) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"weights must be ({len(embeddings['episode'])},) finite and >= 0, got {weights.shape}")
        w = torch.from_numpy(weights[training_rows(embeddings, only_successful)]).to(device)
    image_dim = int(np.asarray(embeddings["image"]).shape[1])
    task_dim = image_dim if conditioning == "text" else len(task_texts)
    state_dim = int(np.asarray(embeddings["states"]).shape[1]) if proprio else 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = BCPolicy(image_dim, task_dim, state_dim, y.shape[1], hidden, conditioning, task_texts)
    policy.mean.copy_(x.mean(0))
    # One-hot and constant columns have tiny spread; the floor keeps them from being blown up.
    policy.std.copy_(x.std(0).clamp_min(1e-2) if len(x) > 1 else torch.ones(x.shape[1]))
    policy.to(device)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses, snapshots, wanted = [], {}, set(int(s) for s in snapshot_at)
    t0 = time.perf_counter()
    policy.train()
    for step in range(1, steps + 1):
        idx = torch.randint(len(x), (batch_size,), generator=gen).to(device)
        loss = weighted_mse(policy(x[idx]), y[idx], None if w is None else w[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step in wanted:
            snapshots[step] = copy.deepcopy(policy.state_dict())
    policy.eval()
    return TrainResult(policy, losses, snapshots, time.perf_counter() - t0)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, A) predictions and targets, (B,) weights -> sum_i w_i mean_a (pred - target)^2 / sum_i w_i (scalar);
    without weights, the plain mean squared error."""
    if weights is None:
        return torch.nn.functional.mse_loss(pred, target)
    return (weights * ((pred - target) ** 2).mean(1)).sum() / weights.sum().clamp_min(1e-12)


def training_loss(policy: BCPolicy, embeddings: dict[str, Any], proprio: bool = True) -> float:
    """Mean squared action error of ``policy`` over every training frame (the full-set MSE)."""
    x, y, _ = bc_features(embeddings, policy.conditioning, proprio)
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(policy(x.to(policy.mean.device)), y.to(policy.mean.device)))


# -------------------------------------------------------------------------------------------- rollouts

def eval_seeds(seeds: int | Sequence[int], task: str, episodes: int, exclude: Sequence[int] = ()) -> list[int]:
    """Environment (layout) seeds of ``episodes`` evaluation rollouts of ``task``.

    ``seeds``: an int base from which distinct per-task seeds are derived (a derivation the dataset
    generator does not use, so layouts differ from the training ones), or explicit env seeds (the first
    ``episodes`` of them are used). Seeds in ``exclude`` (e.g. the training episodes' env seeds) are skipped.
    """
    banned = {int(s) for s in exclude}
    if not isinstance(seeds, int):
        chosen = [int(s) for s in seeds if int(s) not in banned][:episodes]
        if len(chosen) < episodes:
            raise ValueError(f"{episodes} evaluation episodes need as many seeds; got {len(chosen)} usable")
        return chosen
    out, attempt = [], 0
    while len(out) < episodes:
        # Entropy tag 7 keeps these apart from liv.sim.generate.episode_seed's streams (kinds 0, 1).
        entropy = [int(seeds), zlib.crc32(task.encode()), 7, attempt]
        s = int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])
        attempt += 1
        if s not in banned and s not in out:
            out.append(s)
    return out


def evaluate_policy(policy: BCPolicy, model: LIVModel, tasks: Sequence[str], seeds: int | Sequence[int] = 1000,
                    episodes: int = 10, max_steps: int = 200, camera: str | None = None,
                    size: tuple[int, int] = (128, 128), exclude_seeds: Sequence[int] = (),
                    parallel: int = 10, suite: str | None = None) -> dict[str, Any]:
    """Closed-loop rollouts of ``policy`` in the tasks' suite (``suite``, else the one ``tasks`` belong to)
    -> per-task success rates.

    Each step: render (H, W, 3) uint8 -> phi(o) with the frozen ``model`` -> policy([phi(o), task,
    proprioception]) -> env.step (actions clipped to [-1, 1]). An episode succeeds if the env reports
    success at any step (as Meta-World's own evaluation) and stops there. ``seeds``, ``episodes``
    and ``exclude_seeds``: see :func:`eval_seeds`; ``camera`` (default: the suite's first) and ``size``
    should match the training data.
    ``parallel``: rollouts of a task stepped in lockstep so their frames are embedded in one batch.

    Returns {"tasks": {task: {"success_rate", "successes" [bool], "steps" [int], "env_seeds"}},
    "average": mean success rate, "seconds", "steps_per_second"}.
    """
    from liv.sim.suite import suite_of

    chosen = suite_of(tasks, suite)
    device = policy.mean.device
    results, total_steps, t0 = {}, 0, time.perf_counter()
    for task in tasks:
        text = chosen.task_text(task)
        task_vec = policy.task_vector(text, model).to(device)
        env_seeds = eval_seeds(seeds, task, episodes, exclude_seeds)
        successes, lengths = [], []
        for start in range(0, len(env_seeds), max(1, parallel)):
            group = env_seeds[start:start + max(1, parallel)]
            envs = [chosen.make_env(task, s, camera=camera, size=size) for s in group]
            try:
                s, n = _rollout_group(envs, policy, model, task_vec, max_steps)
            finally:
                for env in envs:
                    env.close()
            successes += s
            lengths += n
            total_steps += sum(n)
        results[task] = {"success_rate": float(np.mean(successes)), "successes": successes, "steps": lengths,
                         "env_seeds": env_seeds}
    seconds = time.perf_counter() - t0
    return {"tasks": results, "average": float(np.mean([r["success_rate"] for r in results.values()])),
            "seconds": seconds, "steps_per_second": total_steps / max(seconds, 1e-9)}


def _rollout_group(envs: list, policy: BCPolicy, model: LIVModel, task_vec: torch.Tensor,
                   max_steps: int) -> tuple[list[bool], list[int]]:
    """Step ``envs`` in lockstep until each succeeds or hits ``max_steps`` -> (success, steps) per env."""
    obs = [env.reset() for env in envs]
    done = [False] * len(envs)
    success, steps = [False] * len(envs), [0] * len(envs)
    limit = min([max_steps] + [env.max_steps for env in envs])
    for _ in range(limit):
        live = [i for i, d in enumerate(done) if not d]
        if not live:
            break
        frames = np.stack([envs[i].render() for i in live])
        image = model.encode_images(frames).to(policy.mean.device)
        state = torch.from_numpy(np.stack([envs[i].proprio(obs[i]) for i in live])).to(policy.mean.device)
        with torch.no_grad():
            actions = policy(policy.inputs(image, task_vec.expand(len(live), -1), state)).cpu().numpy()
        for j, i in enumerate(live):
            obs[i], _, _, truncated, info = envs[i].step(actions[j])
            steps[i] += 1
            if info["success"]:
                success[i] = done[i] = True
            elif truncated:
                done[i] = True
    return success, steps


# --------------------------------------------------------------------------------------------- protocol

def run_bc(model: LIVModel, dataset: EpisodeDataset, tasks: Sequence[str], conditioning: Conditioning = "text",
           train_seeds: Sequence[int] = (0, 1, 2), steps: int = 2000, batch_size: int = 256,
           hidden: Sequence[int] = (256, 256), proprio: bool = True, eval_episodes: int = 10,
           max_steps: int = 200, eval_seed: int = 1000, camera: str | None = None,
           size: tuple[int, int] = (128, 128),
           cache_dir: str | os.PathLike[str] | None = None, exclude_seeds: Sequence[int] = (),
           log: Callable[[str], None] | None = None, embeddings: dict[str, Any] | None = None,
           num_threads: int | None = None, suite: str | None = None, weights: np.ndarray | None = None,
           only_successful: bool = True) -> dict[str, Any]:
    """The paper's LCBC protocol for one model and one conditioning -> per-task mean/std success over seeds.

    For each training seed: train ``steps`` steps, evaluate the half-way and final checkpoints on the same
    ``eval_episodes`` new layouts per task, keep the checkpoint with the higher average success over
    tasks (choosing per task would be optimistic), and report each task's success of that checkpoint.
    Returns {"tasks": {task: {"mean", "std", "per_seed"}}, "average": {...}, "seeds": [{"seed",
    "checkpoint", "half": eval, "final": eval, "train_seconds", "final_loss"}], "settings": {...}}; std is
    the population std over seeds. ``exclude_seeds``: training env seeds never to evaluate on.
    ``embeddings``: precomputed :func:`embed_dataset` output; ``num_threads``: torch CPU threads for
    training and rollouts (see :func:`train_policy`; the rollouts embed a few frames at a time, which a
    busy CPU also runs fastest on one thread). ``suite``: the tasks' suite (default: the one they belong
    to); ``camera``: default its first. ``weights`` and ``only_successful``: see :func:`train_policy`.
    """
    from liv.sim.report import seed_summary
    from liv.sim.suite import suite_of

    chosen = suite_of(tasks, suite)
    camera = chosen.check_camera(camera or chosen.default_camera)

    with torch_threads(num_threads):
        say = log or (lambda message: None)
        emb = embeddings if embeddings is not None else embed_dataset(model, dataset, cache_dir)
        per_seed = []
        for seed in train_seeds:
            half = max(1, steps // 2)
            res = train_policy(emb, conditioning, proprio, hidden, steps, batch_size, seed=seed, snapshot_at=(half,),
                               only_successful=only_successful, weights=weights)
            say(f"seed {seed}: trained {steps} steps in {res.seconds:.1f} s, "
                f"loss {res.losses[0]:.4f} -> {res.losses[-1]:.4f}")
            evals = {}
            for name, state in (("half", res.snapshots[half]), ("final", res.policy.state_dict())):
                policy = copy.deepcopy(res.policy)
                policy.load_state_dict(state)
                evals[name] = evaluate_policy(policy, model, tasks, eval_seed, eval_episodes, max_steps, camera, size,
                                              exclude_seeds, suite=chosen.name)
                say(f"seed {seed}, {name} checkpoint: success {evals[name]['average']:.2f} "
                    f"({evals[name]['steps_per_second']:.0f} steps/s)")
            best = "final" if evals["final"]["average"] >= evals["half"]["average"] else "half"
            per_seed.append({"seed": seed, "checkpoint": best, "half": evals["half"], "final": evals["final"],
                             "train_seconds": res.seconds, "final_loss": res.losses[-1]})
        table = {t: seed_summary([s[s["checkpoint"]]["tasks"][t]["success_rate"] for s in per_seed]) for t in tasks}
        settings = {"suite": chosen.name, "conditioning": conditioning, "train_seeds": list(train_seeds),
                    "steps": steps,
                    "batch_size": batch_size, "hidden": list(hidden), "proprio": proprio,
                    "eval_episodes": eval_episodes,
                    "max_steps": max_steps, "eval_seed": eval_seed, "camera": camera, "size": list(size),
                    "frames": int(len(emb["image"])), "embedding_key": emb["key"], "weighted": weights is not None,
                    "only_successful": only_successful}
        return {"tasks": table, "average": seed_summary([s[s["checkpoint"]]["average"] for s in per_seed]),
                "seeds": per_seed, "settings": settings}

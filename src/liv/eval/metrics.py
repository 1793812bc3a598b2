"""Offline reward-quality metrics: pure functions of value curves, and a whole-dataset evaluation.

Definitions (DESIGN.md section 5), with v_1..v_T the values of the T frames of one episode:

- VOC: Spearman rank correlation of (v_1..v_T) with (1..T); tied values get their average rank.
- negative rate: fraction of the T-1 steps with v_t+1 < v_t.
- alignment: Pearson correlation of v_t with t/T.
- language confusion matrix: M[task i, text j] = mean over the episodes of task i of their final-frame
  (or mean) value for text j; retrieval accuracy = fraction of episodes whose own text scores highest.
- AUROC of the final value between successful and failed episodes (Mann-Whitney, ties count one half).

The correlations and the Mann-Whitney statistic are SciPy's (``scipy.stats``: spearmanr, pearsonr,
mannwhitneyu, kendalltau); this module adds the degenerate-input rules below and the dataset evaluation.

Degenerate curves carry no ordering information, so their correlations are defined as 0.0 (what an
uninformative reward scores on average) rather than NaN, which keeps averages and JSON well defined:
VOC and alignment are 0.0 when T < 2 or when the curve is constant; the negative rate is 0.0 when T < 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from liv.data.prefetch import read_ahead, read_ahead_depth

if TYPE_CHECKING:
    from liv.data.episodes import EpisodeDataset
    from liv.model import LIVModel


def _curve(values: Any) -> np.ndarray:
    v = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"a value curve must be 1-D (T,), got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError("value curve contains NaN")
    return v


def average_ranks(x: Any) -> np.ndarray:
    """Ranks 1..n of a 1-D array, tied entries sharing the mean of their ranks -> (n,) float64."""
    from scipy.stats import rankdata

    return rankdata(_curve(x), method="average").astype(np.float64)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import pearsonr

    # A constant input has no direction to correlate with: defined as 0 (see the module docstring).
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    return float(np.clip(pearsonr(a, b).statistic, -1.0, 1.0))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    return float(np.clip(spearmanr(a, b).statistic, -1.0, 1.0))


def voc(values: Any) -> float:
    """Value-order correlation of a (T,) curve: Spearman correlation with time, in [-1, 1].

    1.0 for a strictly increasing curve, -1.0 for a strictly decreasing one, 0.0 when T < 2 or the curve
    is constant. Accepts NumPy arrays, torch tensors or sequences of floats; NaN is an error.
    """
    v = _curve(values)
    return _spearman(v, np.arange(1.0, v.size + 1))


def negative_rate(values: Any) -> float:
    """Fraction of steps t (of T-1) where v_t+1 < v_t, in [0, 1]; 0.0 when T < 2. Equal steps are not
    negative."""
    v = _curve(values)
    return 0.0 if v.size < 2 else float(np.mean(np.diff(v) < 0))


def alignment(values: Any) -> float:
    """Pearson correlation of a (T,) curve with t/T (t = 1..T), in [-1, 1]; 0.0 when T < 2 or the curve
    is constant."""
    v = _curve(values)
    return _pearson(v, np.arange(1.0, v.size + 1) / v.size)


def confusion_matrix(scores: Any, labels: Sequence[int], num_tasks: int | None = None) -> np.ndarray:
    """Language confusion matrix from per-episode scores.

    Args:
        scores: (E, C) score of episode e for goal text c (e.g. its final-frame value).
        labels: (E,) task index of each episode, in [0, num_tasks).
        num_tasks: number of rows K; default max(labels) + 1.

    Returns (K, C) float64: row i is the mean score of the episodes of task i (NaN where task i has no
    episode). Texts 0..K-1 are the tasks' own texts, so the diagonal holds each task's own score.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if s.ndim != 2 or y.shape != (s.shape[0],):
        raise ValueError(f"scores must be (E, C) and labels (E,); got {s.shape} and {y.shape}")
    k = int(y.max()) + 1 if num_tasks is None and y.size else (num_tasks or 0)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"labels must lie in [0, {k}), got range [{y.min()}, {y.max()}]")
    out = np.full((k, s.shape[1]), np.nan)
    for i in range(k):
        rows = s[y == i]
        if len(rows):
            out[i] = rows.mean(axis=0)
    return out


def retrieval_accuracy(matrix: Any, labels: Sequence[int]) -> float:
    """Fraction of rows whose own column (``labels[r]``) holds the row's highest score, in [0, 1].

    ``matrix`` is (R, C): per-episode scores (labels = task of each episode), or a (K, C) confusion matrix
    with labels 0..K-1. A tie for the highest score among k columns that include the own one counts 1/k
    (the expected accuracy of breaking ties at random). Rows containing NaN are skipped; 0.0 if none is left.
    """
    m = np.asarray(matrix, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if m.ndim != 2 or y.shape != (m.shape[0],):
        raise ValueError(f"matrix must be (R, C) and labels (R,); got {m.shape} and {y.shape}")
    hits = []
    for row, own in zip(m, y):
        if np.isnan(row).any():
            continue
        best = row == row.max()
        hits.append(1.0 / best.sum() if best[own] else 0.0)
    return float(np.mean(hits)) if hits else 0.0


def auroc(scores_success: Any, scores_failure: Any) -> float:
    """Area under the ROC curve of separating successes from failures by score, in [0, 1].

    Equals P(s > f) + 0.5 P(s = f) over all pairs (s from successes, f from failures): 1.0 when every
    success scores above every failure, 0.5 for no separation. Both inputs are 1-D and non-empty
    (ValueError otherwise).
    """
    from scipy.stats import mannwhitneyu

    s = _curve(scores_success)
    f = _curve(scores_failure)
    if s.size == 0 or f.size == 0:
        raise ValueError(f"AUROC needs at least one success and one failure, got {s.size} and {f.size}")
    # The Mann-Whitney U of the successes counts the pairs they win, ties one half: AUROC = U / (n_s n_f).
    return float(mannwhitneyu(s, f, alternative="two-sided").statistic / (s.size * f.size))


# --------------------------------------------------------------------------------------- dataset evaluation
def _curve_metrics(v: np.ndarray) -> dict[str, float]:
    return {"voc": voc(v), "negative_rate": negative_rate(v), "alignment": alignment(v)}


def _mean_metrics(records: list[dict[str, float]]) -> dict[str, float | None]:
    keys = ("voc", "negative_rate", "alignment")
    return {k: (float(np.mean([r[k] for r in records])) if records else None) for k in keys}


def _json_matrix(m: np.ndarray) -> list[list[float | None]]:
    return [[None if np.isnan(x) else float(x) for x in row] for row in m]


_OUTCOMES = {True: "success", False: "failure", None: "unknown"}


def select_episodes(dataset: EpisodeDataset, max_per_task: int | None) -> tuple[list[int], dict[str, Any]]:
    """The episodes to evaluate -> (their indices in dataset order, what was kept and dropped).

    A task is a distinct episode text. With ``max_per_task`` N, each task keeps its first N episodes *of
    each outcome* (success, failure, unknown: ``Episode.succeeded`` True, False, None), so a task whose
    failures come after its successes keeps both and its AUROC can still be measured; None keeps all.
    The second value is JSON-ready: ``max_episodes_per_task`` (N or None), ``kept`` and ``dropped``
    ({outcome: episodes} over all tasks) and ``note`` (one line saying what was dropped, or None).
    """
    if max_per_task is not None and max_per_task < 1:
        raise ValueError(f"max_per_task must be >= 1 or None, got {max_per_task}")
    taken: dict[tuple[str, str], int] = {}
    kept = dict.fromkeys(_OUTCOMES.values(), 0)
    dropped = dict(kept)
    selected = []
    for index, ep in enumerate(dataset):
        outcome = _OUTCOMES[ep.succeeded]
        key = (ep.text, outcome)
        if max_per_task is None or taken.get(key, 0) < max_per_task:
            taken[key] = taken.get(key, 0) + 1
            kept[outcome] += 1
            selected.append(index)
        else:
            dropped[outcome] += 1
    note = None
    if any(dropped.values()):
        def counts(c: dict[str, int]) -> str:
            return ", ".join(f"{o} {n}" for o, n in c.items() if n) or "none"

        note = (f"max_episodes_per_task {max_per_task} (per task and outcome): kept {counts(kept)}; dropped "
                f"{counts(dropped)} of {len(dataset)} episodes")
    return selected, {"max_episodes_per_task": max_per_task, "kept": kept, "dropped": dropped, "note": note}


def evaluate_dataset(model: LIVModel, dataset: EpisodeDataset, extra_goals: Sequence[str] = (),
                     max_episodes_per_task: int | None = None, batch_size: int = 64,
                     progress: bool = False, strict_text: bool = False) -> dict[str, Any]:
    """Reward-quality metrics of ``model`` on ``dataset``, per task and overall, as a JSON-ready dict.

    A task is a distinct episode text. Each episode's frames are embedded once; every distinct text (task
    texts, then ``extra_goals`` distractor texts not already among them) in one call. Values are cosine
    similarities S (VOC, negative rate and alignment do not depend on the 1/(1-gamma) scale). A text longer
    than the model's context is cut with a ``liv.TextTruncatedWarning``, or with ``strict_text`` refused
    with ValueError before any frame is read.

    Which episodes count: the first ``max_episodes_per_task`` of each task *and outcome* (success, failure,
    unknown; all if None) are *selected* (:func:`select_episodes`, so failures listed last are not lost);
    when any selected episode carries success flags (``Episode.succeeded`` not None), only successful ones
    are *evaluated* for VOC / negative rate / alignment / confusion matrix, else all selected ones are.
    AUROC uses every selected episode with a flag, per task having both outcomes.

    Keys of the result:
        scale: "similarity".
        dataset: root, format, num_episodes, num_selected, num_evaluated, success_flags (bool), selection
            (what ``max_episodes_per_task`` kept and dropped per outcome, and its one-line note or None;
            see :func:`select_episodes`).
        model: preset, embed_dim, image_resolution.
        tasks: the K task texts (row order); goal_texts: tasks + extra goals (column order, C texts).
        overall: num_episodes (evaluated), text_goal and image_goal {voc, negative_rate, alignment}
            (means over evaluated episodes; text goal = the episode's own text, image goal = its last
            frame), retrieval_accuracy {final, mean} (per episode), task_retrieval_accuracy {final, mean}
            (rows of the confusion matrix), auroc (mean over tasks that have it, or None), num_auroc_tasks,
            pairwise_final, pairwise_mean, kendall_tau_final, progress_pearson, progress_spearman (means
            over the tasks that have them, or None).
        per_task: list of K dicts: task, num_episodes, num_evaluated, num_success, num_failure, text_goal,
            image_goal, retrieval_accuracy {final, mean}, auroc (None without both outcomes), ranking
            (:func:`liv.eval.ranking.ranking`: pairwise accuracy of final and mean values, Kendall's tau,
            split by failure kind), progress ({pearson, spearman, num_episodes} or None).
        confusion: rows (tasks), columns (goal texts), final and mean: (K, C) nested lists (None = no
            evaluated episode of that task).
        episodes: list of per-episode dicts: index (in the dataset), task, task_index, source, num_frames,
            succeeded, evaluated, text_goal {voc, negative_rate, alignment, final, mean}, image_goal
            {voc, negative_rate, alignment}, scores_final and scores_mean (C,), kind (a generated failure's
            kind, :mod:`liv.eval.ranking`, or None), progress ({pearson, spearman} of the text-goal value
            with the data's ground-truth progress: its ``task_progress`` column, else its ``next.reward``;
            None without either; ``dataset.progress_signal`` names the one used), and curves
            {text: (T,), image: (T,)} similarity lists for plots (drop them before writing large files).
    """
    from liv.eval.ranking import failure_kinds, mean_or_none, progress_correlation, ranking
    from liv.reward import scores_from_embeddings

    kinds = failure_kinds(dataset.root, len(dataset)) if dataset.format == "lerobot" else [None] * len(dataset)
    tasks = list(dict.fromkeys(e.text for e in dataset))
    task_of = {t: i for i, t in enumerate(tasks)}
    goal_texts = tasks + [g for g in dict.fromkeys(extra_goals) if g not in task_of]
    selected, selection = select_episodes(dataset, max_episodes_per_task)
    has_flags = any(dataset[i].succeeded is not None for i in selected)
    text_emb = model.encode_texts(goal_texts, strict_text=strict_text) if goal_texts else None

    def read(index: int) -> tuple[int, Any, np.ndarray | None]:
        ep = dataset[index]
        return index, ep, (ep.all_frames() if len(ep) else None)

    # On an accelerator the next episode decodes in a background thread while this one is encoded (up to
    # 3 episodes' frames in memory at once); not on the CPU (see read_ahead_depth).
    iterator: Any = read_ahead(selected, read, depth=read_ahead_depth(getattr(model, "device", None)))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(selected), desc="evaluate", unit="episode",
                        disable=None)  # None: only on a terminal
    episodes = []
    for index, ep, frames in iterator:
        if frames is None:
            continue
        frame_emb = model.encode_images(frames, batch_size=batch_size)
        s_text = scores_from_embeddings(frame_emb, text_emb).cpu().numpy().astype(np.float64)  # (T, C)
        s_image = scores_from_embeddings(frame_emb, frame_emb[-1:])[:, 0].cpu().numpy().astype(np.float64)
        k = task_of[ep.text]
        own = s_text[:, k]
        succeeded = ep.succeeded
        episodes.append({
            "index": index, "task": ep.text, "task_index": k, "source": ep.source, "num_frames": len(ep),
            "succeeded": succeeded, "evaluated": bool(succeeded) if has_flags else True,
            "text_goal": {**_curve_metrics(own), "final": float(own[-1]), "mean": float(own.mean())},
            "image_goal": _curve_metrics(s_image),
            "scores_final": s_text[-1].tolist(), "scores_mean": s_text.mean(axis=0).tolist(),
            "kind": kinds[index],
            "progress": progress_correlation(own, signal) if (signal := _progress_signal(ep)) is not None else None,
            "curves": {"text": own.tolist(), "image": s_image.tolist()},
        })

    evaluated = [e for e in episodes if e["evaluated"]]
    labels = np.array([e["task_index"] for e in evaluated], dtype=np.int64)
    confusion: dict[str, Any] = {"rows": tasks, "columns": goal_texts}
    per_episode_acc: dict[str, float | None] = {}
    task_acc: dict[str, float | None] = {}
    for variant in ("final", "mean"):
        scores = np.array([e[f"scores_{variant}"] for e in evaluated]).reshape(len(evaluated), len(goal_texts))
        matrix = confusion_matrix(scores, labels, num_tasks=len(tasks))
        confusion[variant] = _json_matrix(matrix)
        for e, row in zip(evaluated, scores):
            e[f"retrieved_{variant}"] = retrieval_accuracy(row[None], [e["task_index"]])
        per_episode_acc[variant] = retrieval_accuracy(scores, labels) if len(evaluated) else None
        task_acc[variant] = (retrieval_accuracy(matrix, np.arange(len(tasks)))
                             if len(evaluated) else None)

    per_task = []
    aurocs = []
    for k, task in enumerate(tasks):
        mine = [e for e in episodes if e["task_index"] == k]
        ev = [e for e in mine if e["evaluated"]]
        wins = [e["text_goal"]["final"] for e in mine if e["succeeded"] is True]
        losses = [e["text_goal"]["final"] for e in mine if e["succeeded"] is False]
        task_auroc = auroc(wins, losses) if wins and losses else None
        if task_auroc is not None:
            aurocs.append(task_auroc)
        per_task.append({
            "task": task, "num_episodes": len(mine), "num_evaluated": len(ev),
            "num_success": len(wins), "num_failure": len(losses),
            "text_goal": _mean_metrics([e["text_goal"] for e in ev]),
            "image_goal": _mean_metrics([e["image_goal"] for e in ev]),
            "retrieval_accuracy": {v: (float(np.mean([e[f"retrieved_{v}"] for e in ev])) if ev else None)
                                   for v in ("final", "mean")},
            "auroc": task_auroc,
            "ranking": ranking([{"succeeded": e["succeeded"], "final": e["text_goal"]["final"],
                                 "mean": e["text_goal"]["mean"], "kind": e["kind"]} for e in mine]),
            "progress": _progress_summary(mine),
        })

    return {
        "scale": "similarity",
        "dataset": {"root": str(dataset.root), "format": dataset.format, "num_episodes": len(dataset),
                    "num_selected": len(episodes), "num_evaluated": len(evaluated), "success_flags": has_flags,
                    "selection": selection,
                    "progress_signal": _signal_name(dataset[e["index"]] for e in episodes)},
        "model": {"preset": model.config.preset, "embed_dim": model.embed_dim,
                  "image_resolution": model.image_resolution},
        "tasks": tasks,
        "goal_texts": goal_texts,
        "overall": {
            "num_episodes": len(evaluated),
            "text_goal": _mean_metrics([e["text_goal"] for e in evaluated]),
            "image_goal": _mean_metrics([e["image_goal"] for e in evaluated]),
            "retrieval_accuracy": per_episode_acc,
            "task_retrieval_accuracy": task_acc,
            "auroc": float(np.mean(aurocs)) if aurocs else None,
            "num_auroc_tasks": len(aurocs),
            "pairwise_final": mean_or_none([t["ranking"]["pairwise_final"] for t in per_task]),
            "pairwise_mean": mean_or_none([t["ranking"]["pairwise_mean"] for t in per_task]),
            "kendall_tau_final": mean_or_none([t["ranking"]["kendall_tau_final"] for t in per_task]),
            "progress_pearson": mean_or_none([(t["progress"] or {}).get("pearson") for t in per_task]),
            "progress_spearman": mean_or_none([(t["progress"] or {}).get("spearman") for t in per_task]),
        },
        "per_task": per_task,
        "confusion": confusion,
        "episodes": episodes,
    }


def _progress_summary(episodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Mean progress correlations of a task's episodes that have them, or None."""
    have = [e["progress"] for e in episodes if e["progress"] is not None]
    if not have:
        return None
    return {"pearson": float(np.mean([p["pearson"] for p in have])),
            "spearman": float(np.mean([p["spearman"] for p in have])), "num_episodes": len(have)}


def without_curves(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of :func:`evaluate_dataset`'s result without the per-episode curves (for metrics.json)."""
    out = dict(results)
    out["episodes"] = [{k: v for k, v in e.items() if k != "curves"} for e in results.get("episodes", [])]
    return out


def _progress_signal(ep: Any) -> np.ndarray | None:
    """The episode's ground-truth progress: ``task_progress`` (generated data), else ``next.reward``, else None."""
    return ep.progress if ep.progress is not None else ep.rewards


def _signal_name(episodes: Iterable[Any]) -> str | None:
    """The column the progress correlations were measured against (the first evaluated episode's)."""
    for ep in episodes:
        if ep.progress is not None:
            return "task_progress"
        if ep.rewards is not None:
            return "next.reward"
    return None

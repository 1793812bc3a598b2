"""Success detection with a threshold on the final value, chosen on one split and measured on another.

For each task (episode text), the threshold on the final frame's text-goal similarity is the one that
maximises F1 (success = positive) on the calibration episodes: the candidates are the midpoints between
consecutive distinct calibration values (and -1, the least similarity, which calls every episode a
success); among equal F1s the lowest threshold wins. It is then applied to the other episodes, where
precision, recall and F1 are reported. The calibration split is the ``--calibrate-on`` dataset, or else a
seeded half of each task's labelled episodes (half of its successes and half of its failures, rounded
up, so that both splits see both outcomes when there are at least two of each). A task without both
outcomes on its calibration split has no threshold; a task whose held-out episodes lack either outcome
has no held-out figures (one outcome alone makes F1 trivially 1 or 0) and stays out of the pooled ones;
a figure that cannot be measured is None.

``liv evaluate`` writes the thresholds to ``success_thresholds.json``; ``liv reward --success-thresholds``
and the Gymnasium wrapper (``success_threshold=``) turn a value at or above it into a success flag.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from liv.data.episodes import EpisodeDataset

THRESHOLDS_FILE = "success_thresholds.json"
"""The file ``liv evaluate`` writes the thresholds to, in its output folder."""


def detection_scores(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> dict[str, Any]:
    """Precision, recall and F1 of predicting success where score >= ``threshold`` -> {"precision", "recall",
    "f1", "n", "true_positives", "predicted", "positives"}; precision is None with no predicted success,
    recall None with no actual success, F1 None when either is."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels, bool)
    pred = s >= threshold
    tp, npred, npos = int((pred & y).sum()), int(pred.sum()), int(y.sum())
    precision = tp / npred if npred else None
    recall = tp / npos if npos else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "n": int(s.size), "true_positives": tp,
            "predicted": npred, "positives": npos}


def best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """The threshold maximising F1 on (scores, labels) (lowest among ties); None without both outcomes."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels, bool)
    if s.size == 0 or y.all() or not y.any():
        return None
    values = np.unique(s)
    # Below every value: -1, the least cosine similarity (a threshold outside [-1, 1] is refused on reading).
    candidates = np.r_[min(-1.0, values[0]), (values[:-1] + values[1:]) / 2.0]
    f1s = [detection_scores(s, y, t)["f1"] or 0.0 for t in candidates]
    return float(candidates[int(np.argmax(f1s))])


def calibration_split(tasks: Sequence[str], labels: Sequence[bool | None], seed: int = 0) -> np.ndarray:
    """(E,) bool: the episodes of the calibration half (see the module docstring); unlabelled ones in neither."""
    rng = np.random.default_rng(seed)
    calib = np.zeros(len(tasks), bool)
    for task in dict.fromkeys(tasks):
        for outcome in (True, False):
            rows = [i for i, (t, y) in enumerate(zip(tasks, labels)) if t == task and y is not None
                    and bool(y) == outcome]  # numpy bools too
            rng.shuffle(rows)
            calib[rows[: (len(rows) + 1) // 2]] = True
    return calib


def success_detection(episodes: Sequence[Mapping[str, Any]], calibration: Sequence[Mapping[str, Any]] | None = None,
                      seed: int = 0) -> dict[str, Any]:
    """Thresholds and held-out detection figures from :func:`liv.eval.metrics.evaluate_dataset` episodes
    (each with "task", "succeeded", "text_goal": {"final"}).

    ``calibration``: episodes of another dataset to choose thresholds on (then every labelled episode of
    ``episodes`` is measured); None: a seeded half of ``episodes`` (``seed``). Returns {"calibration":
    "dataset" or "half", "per_task": {task: {"threshold", "calibration_episodes", **detection_scores on the
    held-out episodes}}, "overall": detection_scores pooled over the tasks that have a threshold}."""
    labelled = [e for e in episodes if e["succeeded"] is not None]
    if calibration is None:
        mask = calibration_split([e["task"] for e in labelled], [e["succeeded"] for e in labelled], seed)
        calib = [e for e, m in zip(labelled, mask) if m]
        test = [e for e, m in zip(labelled, mask) if not m]
    else:
        calib, test = [e for e in calibration if e["succeeded"] is not None], labelled
    per_task: dict[str, Any] = {}
    pooled_s, pooled_y = [], []
    for task in dict.fromkeys(e["task"] for e in labelled):
        mine_c = [e for e in calib if e["task"] == task]
        mine_t = [e for e in test if e["task"] == task]
        t = best_threshold([e["text_goal"]["final"] for e in mine_c], [e["succeeded"] for e in mine_c])
        scores = [e["text_goal"]["final"] for e in mine_t]
        labels = [bool(e["succeeded"]) for e in mine_t]
        measurable = t is not None and any(labels) and not all(labels)
        figures = detection_scores(scores, labels, t) if measurable else \
            {"precision": None, "recall": None, "f1": None, "n": len(mine_t)}
        per_task[task] = {"threshold": t, "calibration_episodes": len(mine_c), **figures}
        if measurable:
            pooled_s += [s - t for s in scores]  # each task's own threshold, as a shift to 0
            pooled_y += labels
    overall = detection_scores(pooled_s, pooled_y, 0.0) if pooled_s else \
        {"precision": None, "recall": None, "f1": None, "n": 0}
    return {"calibration": "half" if calibration is None else "dataset", "seed": seed, "per_task": per_task,
            "overall": overall}


def write_thresholds(path: str | os.PathLike[str], detection: Mapping[str, Any], model: str) -> Path:
    """Write {"model", "value": what is thresholded, "thresholds": {task text: threshold}} as JSON, atomically."""
    path = Path(path)
    thresholds = {t: r["threshold"] for t, r in detection["per_task"].items() if r["threshold"] is not None}
    record = {"model": str(model), "value": "cosine similarity of the final frame with the task text (S)",
              "calibration": detection["calibration"], "thresholds": thresholds}
    from liv.checkpoints.native import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1) + "\n"))
    return path


def read_thresholds(path: str | os.PathLike[str]) -> dict[str, float]:
    """{task text: threshold} from a :func:`write_thresholds` file. Raises ValueError naming the file if it is
    missing, not such a file, or holds a threshold that is not a number in [-1, 1] (naming its text)."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such success-thresholds file")
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM from a Windows editor is fine
        thresholds = {str(k): float(v) for k, v in record["thresholds"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"{path}: not a success-thresholds file written by `liv evaluate` (it needs a "
                         '"thresholds" object of task text: number)') from None
    # float32 similarities may pass +-1 by a rounding step
    bad = next((k for k, v in thresholds.items() if not (math.isfinite(v) and abs(v) <= 1.0 + 1e-6)), None)
    if bad is not None:
        raise ValueError(f"{path}: the threshold of {bad!r} is {thresholds[bad]}; a threshold on a cosine "
                         "similarity is a number in [-1, 1]")
    return thresholds


def thresholds_for_goals(path: str | os.PathLike[str] | None, texts: Sequence[str],
                         image_goals: int = 0, require_all: bool = True) -> dict[str, float]:
    """The thresholds of the goal ``texts`` in a success-thresholds file ({} without a file). Raises ValueError
    when there are only image goals (thresholds are per task text), or when a text has none (naming it and
    the texts the file has); with ``require_all`` False, only when no text has one (the others are left out
    of the result and named on stderr)."""
    if path is None:
        return {}
    known = read_thresholds(path)
    if not texts and image_goals:
        raise ValueError(f"--success-thresholds {path}: thresholds are per task text, and every goal here is an "
                         "image; give the text as --goal too")
    missing = [t for t in texts if t not in known]
    if missing and (require_all or len(missing) == len(texts)):
        raise ValueError(f"--success-thresholds {path} has no threshold for the goal text(s) {missing[:5]}; it has "
                         f"{sorted(known)[:5]}")
    if missing:
        print(f"liv reward: {path} has no threshold for {len(missing)} text(s) (their success is null): "
              f"{missing[:5]}", file=sys.stderr)
    return {t: known[t] for t in texts if t in known}


def calibration_dataset(path: Path | None, format: str, camera: str | None,
                        dataset: EpisodeDataset) -> EpisodeDataset | None:
    """`liv evaluate --calibrate-on`'s dataset (None without one), opened and checked before any work: ValueError
    when it has no labelled episode or no task text in common with ``dataset``."""
    if path is None:
        return None
    from liv.data.open import open_dataset

    if not any(e.succeeded is not None for e in dataset):
        raise ValueError(f"--calibrate-on {path}: --data has no labelled episode to measure the thresholds on; "
                         "to choose thresholds only, evaluate the labelled data itself as --data")
    calibration = open_dataset(path, format=format, camera=camera)  # type: ignore[arg-type]
    if not any(e.succeeded is not None for e in calibration):
        raise ValueError(f"--calibrate-on {path}: no episode has an outcome (a success column or next.success "
                         "flags); thresholds are chosen on labelled episodes")
    if not set(calibration.texts) & set(dataset.texts):
        raise ValueError(f"--calibrate-on {path}: none of its tasks is a task of --data ({sorted(dataset.texts)[:5]}"
                         "...); thresholds are per task text")
    return calibration


def evaluate_detection(results: dict[str, Any], out: Path, model_name: str, model: Any,
                       calibration_data: EpisodeDataset | None, seed: int = 0, batch_size: int = 64,
                       strict_text: bool = False) -> dict[str, Any] | None:
    """`liv evaluate`'s detection: :func:`success_detection` on the evaluated ``results`` (calibrated on
    ``calibration_data``, evaluated with ``model``, when given), its thresholds written to
    ``out/success_thresholds.json``. None when no episode is labelled; then an earlier run's thresholds
    file in ``out`` is removed (and said so on stderr), so that `liv reward` cannot take it for this model's."""
    from liv.eval.metrics import evaluate_dataset

    path = Path(out) / THRESHOLDS_FILE
    if not any(e["succeeded"] is not None for e in results["episodes"]):
        if path.is_file():
            path.unlink()
            print(f"liv evaluate: no labelled episodes, so no thresholds: removed the earlier {path}", file=sys.stderr)
        return None
    calibration = None
    if calibration_data is not None:
        calibration = evaluate_dataset(model, calibration_data, batch_size=batch_size,
                                       strict_text=strict_text)["episodes"]
    detection = success_detection(results["episodes"], calibration, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_thresholds(path, detection, model_name)
    return detection

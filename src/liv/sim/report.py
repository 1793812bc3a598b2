"""Results of simulated evaluations (behaviour cloning, planning) as JSON and Markdown tables.

A result row is what :func:`liv.sim.bc.run_bc` and :func:`liv.sim.planning.run_planning` return:
{"tasks": {task: {"mean", "std", "per_seed"}}, "average": {"mean", "std", "per_seed"}, ...} with success
rates in [0, 1]. Tables follow the paper's Tables 1/2/6: one row per representation (model and
conditioning), one column per task plus the average, cells "mean ± std" in percent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    """Per-seed values -> {"mean", "std" (population std; 0 for one seed), "per_seed"} as floats."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values to summarise")
    return {"mean": float(v.mean()), "std": float(v.std()), "per_seed": [float(x) for x in v]}


def _cell(stat: Mapping[str, Any] | None, digits: int) -> str:
    if stat is None:
        return "–"
    return f"{100 * stat['mean']:.{digits}f} ± {100 * stat['std']:.{digits}f}"


def short_task(task: str) -> str:
    """A column header for a task: its Meta-World name without the version (``drawer-open-v3`` -> ``drawer-open``)."""
    return task.removesuffix("-v3").removesuffix("-v2")


def markdown_table(rows: Mapping[str, Mapping[str, Any]], tasks: Sequence[str] | None = None,
                   digits: int = 1) -> str:
    """Rows (label -> result row) -> a Markdown table: columns are the tasks and "Average"; cells are
    success "mean ± std" in percent with ``digits`` decimals, "–" where a row lacks a task. ``tasks``:
    column order (default: the union of the rows' tasks in first-seen order). The average column is the
    row's own "average" (the mean over seeds of the per-seed task average)."""
    if tasks is None:
        tasks = list(dict.fromkeys(t for r in rows.values() for t in r["tasks"]))
    header = ["Representation"] + [short_task(t) for t in tasks] + ["Average"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    for label, row in rows.items():
        cells = [_cell(row["tasks"].get(t), digits) for t in tasks] + [_cell(row.get("average"), digits)]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines) + "\n"


def outcomes(row: Mapping[str, Any], task: str) -> list[list[bool]] | None:
    """A row's rollout outcomes of ``task`` grouped by seed: LCBC rows (:func:`liv.sim.bc.run_bc`: the kept
    checkpoint's rollouts) and planning rows (:func:`liv.sim.planning.run_planning`: its episodes); None
    for a row without them."""
    if "seeds" in row and row["seeds"] and "checkpoint" in row["seeds"][0]:
        return [[bool(x) for x in s[s["checkpoint"]]["tasks"][task]["successes"]] for s in row["seeds"]
                if task in s[s["checkpoint"]]["tasks"]]
    if "episodes" in row:
        seeds = sorted({e["seed"] for e in row["episodes"]})
        return [[bool(e["success"]) for e in row["episodes"] if e["seed"] == s and e["task"] == task] for s in seeds]
    return None


def interval_table(rows: Mapping[str, Mapping[str, Any]], tasks: Sequence[str]) -> str:
    """A Markdown table of each row's success pooled over seeds and rollouts with its 95% Wilson interval
    ("rate [low, high]" in percent; :mod:`liv.sim.reproduce.stats`), per task and over all tasks."""
    from liv.sim.reproduce.stats import format_cell, success_cell

    header = ["Representation"] + [short_task(t) for t in tasks] + ["All tasks"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    for label, row in rows.items():
        per_task = {t: outcomes(row, t) for t in tasks}
        if any(v is None for v in per_task.values()):
            continue
        cells = [format_cell(success_cell(v)) if any(v) else "–" for v in per_task.values()]
        n_seeds = max(len(v) for v in per_task.values())
        pooled = [[x for v in per_task.values() if s < len(v) for x in v[s]] for s in range(n_seeds)]
        lines.append("| " + " | ".join([label] + cells + [format_cell(success_cell(pooled))]) + " |")
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_sim_report(rows: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike[str], name: str,
                     title: str, tasks: Sequence[str] | None = None, notes: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (every row in full) and ``<out_dir>/<name>.md`` (title, the table,
    notes as a bullet list) -> (json path, markdown path). Both are replaced atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(t for r in rows.values() for t in r["tasks"]))
    text = (f"# {title}\n\nSuccess rate (%), mean ± std over seeds.\n\n{markdown_table(rows, tasks)}\n"
            f"Pooled over seeds and rollouts: rate [95% Wilson interval] (%).\n\n{interval_table(rows, tasks)}")
    if notes:
        text += "\n" + "".join(f"- {n}\n" for n in notes)
    for path, content in ((json_path, json.dumps(_jsonable({"title": title, "rows": rows}), indent=1)),
                          (md_path, text)):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    return json_path, md_path

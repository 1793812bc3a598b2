"""Tables of `liv reproduce`, laid out like the paper's, with its numbers beside ours: Markdown and HTML.

Every table is built once as rows of strings (:func:`tables`) and written both as Markdown
(``tables.md``) and as HTML (``report.html``, one self-contained file with the Figure 6 curves and every
setting). Cells are success rates "rate [low, high]" in percent: the pooled rate over all rollouts of
the cell and its 95% Wilson interval (:mod:`liv.sim.reproduce.stats`).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from liv.sim.reproduce import paper
from liv.sim.reproduce.stats import format_cell, ordering

Table = tuple[str, list[str], list[list[str]], str]
"""(title, header, rows, note)."""


def _rep(results: Mapping[str, Any], init: str, objective: str) -> str | None:
    for label, rep in results["representations"].items():
        if rep["init"] == init and rep["objective"] == objective:
            return label
    return None


def _plan_cell(results: Mapping[str, Any], init: str | None, objective: str | None, iterations: int,
               goal: str = "task") -> dict[str, Any] | None:
    """The average success cell of the planning cell with these settings, or None."""
    for cell in results["planning"].values():
        if (cell["init"], cell["objective"], cell["iterations"], cell["goal"]) == (init, objective, iterations, goal):
            return cell["average"]
    return None


def tables(results: Mapping[str, Any]) -> list[Table]:
    """The report's tables from :func:`liv.sim.reproduce.command` results."""
    suite = results["settings"]["suite"]
    objectives = ["pretrained"] + list(results["settings"]["objectives"])
    inits = list(dict.fromkeys(r["init"] for r in results["representations"].values()))
    out: list[Table] = []
    lcbc = results["lcbc"]
    if any("text" in v for v in lcbc.values()):
        rows = []
        for init in inits:
            cells = [lcbc.get(_rep(results, init, o) or "", {}).get("text", {}).get("average") for o in objectives]
            rows.append([f"{init} (liv)"] + [format_cell(c) for c in cells])
            ref = paper.TABLE1.get(suite, {}).get(init)
            if ref:
                rows.append([f"{init} (paper)"] + [ref.get(o, "–") for o in objectives])
        out.append(("Table 1: LCBC success (%) with text conditioning, by init and fine-tuning objective",
                    ["Init"] + [_title(o) for o in objectives], rows,
                    "liv: pooled rate over all rollouts [95% Wilson interval]; paper: mean ± std over 3 seeds."))
    if any("onehot" in v and "text" in v for v in lcbc.values()):
        rows = []
        for label, by_cond in lcbc.items():
            init = results["representations"][label]["init"]
            pretrained = results["representations"][label]["objective"] == "pretrained"
            ref = paper.TABLE6.get(suite, {}).get(init) if pretrained else None
            rows.append([label, format_cell(by_cond.get("text", {}).get("average")),
                         format_cell(by_cond.get("onehot", {}).get("average")),
                         ref[0] if ref else "–", ref[1] if ref else "–"])
        out.append(("Table 6: LCBC success (%), text embedding vs one-hot task id",
                    ["Representation", "text", "one-hot", "paper text", "paper one-hot"], rows, ""))
    iterations = list(results["settings"]["plan_iterations"])
    if results["planning"]:
        rows = []
        keys = list(dict.fromkeys((c["init"], c["objective"]) for c in results["planning"].values()
                                  if c["goal"] == "task"))
        for init, objective in keys:
            ref = paper.PLANNING.get(suite, {}).get((init, objective))
            label = "simulator reward (oracle)" if init is None else (_rep(results, init, objective) or "")
            cells = [format_cell(_plan_cell(results, init, objective, it)) for it in iterations]
            refs = [ref[0] if ref else "–", (ref[1] or "–") if ref else "–"] if {1, 3} <= set(iterations) else []
            rows.append([label] + cells + refs)
        header = ["Reward"] + [f"{it} it" for it in iterations] + \
                 (["paper 1 it", "paper 3 it"] if {1, 3} <= set(iterations) else [])
        out.append(("Tables 2 and 8: planning success (%) with each reward, by CEM/MPPI iterations", header, rows,
                    "the paper's Meta-World planning used a learned SV2P video model; liv plans in the true "
                    "simulator."))
        rows = []
        for cell in results["planning"].values():
            if cell["goal"] != "random":
                continue
            same = _plan_cell(results, cell["init"], cell["objective"], cell["iterations"])
            ref = paper.TABLE9.get((cell["init"], cell["objective"]))
            rows.append([cell["rep"], format_cell(same), format_cell(cell["average"]), ref[0] if ref else "–",
                         ref[1] if ref else "–"])
        if rows:
            out.append(("Table 9: planning success (%) with the task's text vs a random other task's text",
                        ["Reward", "correct goal", "random goal", "paper correct", "paper random"], rows,
                        "paper numbers: FrankaKitchen."))
    out += _task_tables(results)
    return out


def _task_tables(results: Mapping[str, Any]) -> list[Table]:
    tasks = results["settings"]["tasks"]
    out: list[Table] = []
    for cond in ("text", "onehot"):
        rows = [[label] + [format_cell(by_cond[cond]["tasks"].get(t)) for t in tasks]
                for label, by_cond in results["lcbc"].items() if cond in by_cond]
        if rows:
            out.append((f"LCBC success (%) per task, {cond} conditioning", ["Representation"] + tasks, rows, ""))
    rows = [[name] + [format_cell(cell["tasks"].get(t)) for t in tasks] for name, cell in results["planning"].items()]
    if rows:
        out.append(("Planning success (%) per task", ["Planning cell"] + tasks, rows, ""))
    return out


def _title(objective: str) -> str:
    return {"pretrained": "Pre-Trained", "liv": "LIV", "clip": "CLIP", "vip-i": "VIP-I"}[objective]


def claims(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paper's orderings (:data:`liv.sim.reproduce.paper.CLAIMS`) checked on the results, per init.

    Each: {"statement", "init", "claim" (from :func:`~liv.sim.reproduce.stats.ordering`), "verdict":
    "holds", "does not hold" or "not separated", "difference" (points)}; skipped where a cell is missing."""
    out = []
    first_it = results["settings"]["plan_iterations"][0]
    inits = list(dict.fromkeys(r["init"] for r in results["representations"].values()))
    for kind, statement, objs in paper.CLAIMS:
        for init in inits:
            pair = _claim_cells(results, kind, init, objs, first_it)
            if pair is None:
                continue
            (a, name_a), (b, name_b) = pair
            order = ordering(a, b, name_a, name_b)
            if kind == "text":  # "at least as well": refuted only by one-hot separating above
                verdict = "does not hold" if order["separated"] and order["difference"] < 0 else \
                    ("holds" if order["separated"] else "not separated (consistent with 'at least as well')")
            else:
                verdict = ("holds" if order["difference"] > 0 else "does not hold") if order["separated"] \
                    else "not separated"
            out.append({"statement": statement, "init": init, "claim": order["claim"], "verdict": verdict,
                        "difference": 100 * order["difference"]})
    return out


def _claim_cells(results, kind, init, objs, first_it):
    lcbc = results["lcbc"]
    if kind in ("lcbc", "text"):
        labels = [_rep(results, init, o) for o in (objs if kind == "lcbc" else (objs[0], objs[0]))]
        if None in labels:
            return None
        conds = ("text", "text") if kind == "lcbc" else ("text", "onehot")
        cells = [lcbc.get(lab, {}).get(c, {}).get("average") for lab, c in zip(labels, conds)]
        names = [f"{lab} ({c})" for lab, c in zip(labels, conds)]
    elif kind == "plan":
        cells = [_plan_cell(results, init, o, first_it) for o in objs]
        names = [f"{_rep(results, init, o)} reward" for o in objs]
    elif kind == "plan3":
        cells = [_plan_cell(results, init, objs[0], 3), _plan_cell(results, init, objs[0], 1)]
        names = ["3 iterations", "1 iteration"]
    else:
        cells = [_plan_cell(results, init, objs[0], first_it), _plan_cell(results, init, objs[0], first_it, "random")]
        names = ["correct goal", "random goal"]
    if any(c is None for c in cells):
        return None
    return (cells[0], names[0]), (cells[1], names[1])


def markdown(results: Mapping[str, Any]) -> str:
    """Every table and the checked claims as Markdown."""
    parts = []
    for title, header, rows, note in tables(results):
        parts.append(f"### {title}\n\n| " + " | ".join(header) + " |\n|" + "|".join([" --- "] * len(header)) + "|\n"
                     + "".join("| " + " | ".join(r) + " |\n" for r in rows) + (f"\n{note}\n" if note else ""))
    lines = [f"- {c['statement']} ({c['init']}): **{c['verdict']}**; {c['claim']}, difference {c['difference']:+.0f} "
             "points" for c in results["claims"]]
    parts.append("### The paper's orderings, checked (an ordering is claimed only where the 95% intervals "
                 "separate)\n\n" + "\n".join(lines) + "\n")
    return "\n".join(parts)


def write_report(results: Mapping[str, Any], out: str | os.PathLike[str], figure_png: bytes | None) -> dict[str, Path]:
    """Write OUT/results.json, OUT/tables.md, OUT/report.html (and OUT/figure6.png) atomically -> their paths."""
    from liv.eval.figures import png_img_tag
    from liv.eval.report import html_page

    out = Path(out)
    body = [f"<h1>liv reproduce: {html.escape(results['settings']['suite'])}, scale "
            f"{html.escape(results['settings']['scale'])}</h1>",
            f'<p class="note">Wall time {results["wall_seconds"] / 60:.1f} min. Cells: success rate over all rollouts '
            "[95% Wilson interval], in percent.</p>"]
    for title, header, rows, note in tables(results):
        body.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                    + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                                        for r in rows) + "</table>"
                    + (f'<p class="note">{html.escape(note)}</p>' if note else ""))
    body.append("<h2>The paper's orderings, checked</h2><ul>" + "".join(
        f"<li>{html.escape(c['statement'])} ({html.escape(c['init'])}): <b>{html.escape(c['verdict'])}</b>; "
        f"{html.escape(c['claim'])}, difference {c['difference']:+.0f} points</li>" for c in results["claims"])
        + "</ul>")
    if figure_png is not None:
        body.append("<h2>Figure 6: value curves on demonstrations</h2>" + png_img_tag(figure_png, "value curves"))
    body.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(results["settings"], indent=1)) + "</pre>")
    files = {"results": (out / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n"),
             "tables": (out / "tables.md", markdown(results)),
             "report": (out / "report.html", html_page("liv reproduce", "\n".join(body)))}
    paths = {}
    for name, (path, text) in files.items():
        _atomic_write(path, text.encode("utf-8"))
        paths[name] = path
    if figure_png is not None:
        _atomic_write(out / "figure6.png", figure_png)
        paths["figure"] = out / "figure6.png"
    return paths


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def summarise(per_seed_by_task: Mapping[str, Sequence[Sequence[bool]]]) -> dict[str, Any]:
    """{task: outcomes grouped by seed} -> {"average": cell over every outcome (grouped by seed), "tasks":
    {task: cell}} (cells from :func:`~liv.sim.reproduce.stats.success_cell`)."""
    from liv.sim.reproduce.stats import success_cell

    tasks = list(per_seed_by_task)
    seeds = max(len(v) for v in per_seed_by_task.values())
    pooled = [[x for t in tasks if s < len(per_seed_by_task[t]) for x in per_seed_by_task[t][s]] for s in range(seeds)]
    return {"average": success_cell(pooled), "tasks": {t: success_cell(per_seed_by_task[t]) for t in tasks}}

"""`liv compare`'s page: several models evaluated on one dataset, side by side.

``compare.html`` holds the overall metrics, each model's language confusion matrix, the reward curves of
the same episodes under every model and per-task tables; each model's column links to its own full report
(``models/<name>/report.html``, written next to it), so no link on the page points at a missing file.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liv.eval.figures import img_tag, new_figure, short_label
from liv.eval.labels import folder_names
from liv.eval.report import (IMAGE_COLOUR, METRICS_NOTE, TEXT_COLOUR, confusion_figure, fmt_cell, html_page,
                             write_json, write_report)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from liv.data.episodes import EpisodeDataset

MODEL_PAGES = "models"
"""Folder of ``compare.html``'s output directory holding one report folder per model."""

_COMPARE_ROWS = [
    ("text goal VOC", ("text_goal", "voc")), ("text goal negative rate", ("text_goal", "negative_rate")),
    ("text goal alignment", ("text_goal", "alignment")), ("image goal VOC", ("image_goal", "voc")),
    ("image goal negative rate", ("image_goal", "negative_rate")),
    ("image goal alignment", ("image_goal", "alignment")),
    ("retrieval accuracy (final)", ("retrieval_accuracy", "final")),
    ("retrieval accuracy (mean)", ("retrieval_accuracy", "mean")),
    ("task retrieval accuracy (final)", ("task_retrieval_accuracy", "final")),
    ("AUROC success vs failure", ("auroc",)),
    ("pairwise accuracy success > failure (final)", ("pairwise_final",)),
    ("pairwise accuracy success > failure (mean)", ("pairwise_mean",)),
    ("Kendall tau value vs outcome (final)", ("kendall_tau_final",)),
    ("progress correlation, Pearson", ("progress_pearson",)),
    ("progress correlation, Spearman", ("progress_spearman",)),
]
_TOP_ROWS = [("success detection F1, held out", ("detection", "overall", "f1"))]
"""Rows read from the top of a result rather than from its "overall" figures."""


def _dig(d: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, Mapping) else None  # type: ignore[assignment]
    return d


def write_compare(results_by_model: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike,
                  dataset: EpisodeDataset | None = None, title: str = "LIV reward comparison",
                  model_pages: bool = True) -> Path:
    """Write ``compare.json`` ({model label: metrics without curves}) and ``compare.html``.

    ``results_by_model`` maps a model's label to :func:`liv.eval.metrics.evaluate_dataset`'s dict (with its
    curves), all on one dataset. With ``model_pages`` each model also gets its full report
    (:func:`liv.eval.report.write_report`) in ``models/<label as a folder name>/``, linked from the page;
    ``dataset`` adds strips of frames to those reports. Returns the path of ``compare.html``.
    """
    from liv.eval.metrics import without_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json({name: without_curves(dict(r)) for name, r in results_by_model.items()}, out / "compare.json")
    links = {}
    if model_pages:
        for name, folder in zip(results_by_model, folder_names(list(results_by_model))):
            page = write_report(results_by_model[name], out / MODEL_PAGES / folder, dataset=dataset,
                                title=f"LIV reward report: {name}",
                                up=("../../compare.html", f"\u2190 {title}: all {len(results_by_model)} models"))
            links[name] = page.relative_to(out).as_posix()
    path = out / "compare.html"
    body = [f"<h1>{html.escape(title)}</h1>", *compare_sections(results_by_model, links)]
    path.write_text(html_page(title, "\n".join(body)), encoding="utf-8")
    return path


def _model_head(names: Sequence[str], links: Mapping[str, str], first: str) -> str:
    cells = [f'<a href="{html.escape(links[n])}">{html.escape(n)}</a>' if n in links else html.escape(n)
             for n in names]
    return f'<tr><th class="label">{first}</th>' + "".join(f"<th>{c}</th>" for c in cells) + "</tr>"


def compare_sections(results_by_model: Mapping[str, Mapping[str, Any]],
                     links: Mapping[str, str] | None = None, episodes_per_task: int = 1,
                     max_episodes: int = 12) -> list[str]:
    """HTML fragments comparing models, no title: overall metrics side by side, the language confusion
    matrices side by side, reward curves of the same episodes under each model (``episodes_per_task`` per
    task, at most ``max_episodes``), then per-task tables. ``links`` maps a model label to the relative
    address of its own report; a model without one is named without a link."""
    links = links or {}
    names = list(results_by_model)
    rows = []
    for label, keys, top in [(lab, k, False) for lab, k in _COMPARE_ROWS] + [(lab, k, True) for lab, k in _TOP_ROWS]:
        vals = [_dig(results_by_model[n] if top else results_by_model[n]["overall"], keys) for n in names]
        known = [v for v in vals if v is not None]
        # Bold the best model of each row; a falling value is the only metric where lower is better.
        best = (min if "negative" in label else max)(known) if len(known) > 1 else None
        cells = "".join(f"<td><b>{fmt_cell(v)}</b></td>" if v is not None and v == best
                        else f"<td>{fmt_cell(v)}</td>" for v in vals)
        rows.append(f'<tr><td class="label">{label}</td>{cells}</tr>')
    pages = (" Each model's name links to its full report (every metric per task, both confusion matrices, "
             "more episodes).") if links else ""
    parts = ["<h2>All tasks</h2>", f"<table>{_model_head(names, links, 'metric')}{''.join(rows)}</table>",
             f'<p class="note">Best model per row in bold (lowest negative rate, highest otherwise). '
             f"{METRICS_NOTE}{pages}</p>"]
    parts += _confusion_section(results_by_model)
    parts += _curves_section(results_by_model, episodes_per_task, max_episodes)
    tasks = list(dict.fromkeys(t for r in results_by_model.values() for t in r["tasks"]))
    for label, keys in (("text goal VOC", ("text_goal", "voc")),
                        ("retrieval accuracy (final)", ("retrieval_accuracy", "final"))):
        per = {n: {t["task"]: t for t in results_by_model[n]["per_task"]} for n in names}
        body = [f'<tr><td class="label">{html.escape(task)}</td>'
                + "".join(f"<td>{fmt_cell(_dig(per[n].get(task, {}), keys))}</td>" for n in names) + "</tr>"
                for task in tasks]
        parts += [f"<h2>{label} per task</h2>", f"<table>{_model_head(names, links, 'task')}{''.join(body)}</table>"]
    return parts


def _grid_class(n: int) -> str:
    return "grid pair" if n == 2 else "grid trio" if n >= 3 else "grid"


def _confusion_section(results_by_model: Mapping[str, Mapping[str, Any]]) -> list[str]:
    shown = {n: r for n, r in results_by_model.items() if r["tasks"]}
    if not shown:
        return []
    parts = ["<h2>Language confusion matrices</h2>",
             '<p class="note">Per model, row: the task of the episodes; column: the goal text; cell: mean '
             "final-frame similarity (outlined: own text). A reward that reads the language is highest on the "
             "outlined diagonal. Each matrix has its own colour scale.</p>",
             f'<div class="{_grid_class(len(shown))}">']
    for name, r in shown.items():
        conf = r["confusion"]
        retrieval = fmt_cell(r["overall"]["retrieval_accuracy"]["final"])
        fig = confusion_figure(conf["final"], conf["rows"], conf["columns"],
                               f"{short_label(name, 40)}\nretrieval accuracy {retrieval} (final frame)")
        parts.append(img_tag(fig, f"confusion matrix of {name}"))
    parts.append("</div>")
    return parts


def shared_episodes(results_by_model: Mapping[str, Mapping[str, Any]], per_task: int = 1) -> list[int]:
    """Dataset indices of episodes every model has curves for: the first ``per_task`` evaluated ones of
    each task, in task order (so every model is shown the same episodes)."""
    models = list(results_by_model.values())
    if not models:
        return []
    with_curves = [{e["index"] for e in r["episodes"] if "curves" in e} for r in models]
    common = set.intersection(*with_curves)
    first = models[0]
    out = []
    for k in range(len(first["tasks"])):
        mine = [e["index"] for e in first["episodes"] if e["task_index"] == k and e["evaluated"]
                and e["index"] in common]
        out += mine[:per_task]
    return out


def _curves_section(results_by_model: Mapping[str, Mapping[str, Any]], per_task: int, limit: int) -> list[str]:
    indices = shared_episodes(results_by_model, per_task)
    if not indices:
        return []
    parts = ["<h2>Reward curves of the same episodes</h2>",
             '<p class="note">One figure per episode, one column per model: similarity of each frame with the '
             "episode's text (top, blue) and with its last frame (bottom, red). Every axis has its own y range, "
             "so compare shapes (rising, flat, falling) across models, and values only through the numbers "
             f"on each axis.{f' The first {limit} of {len(indices)} episodes.' if len(indices) > limit else ''}"
             '</p><div class="grid">']
    for index in indices[:limit]:
        by_model = {n: next(e for e in r["episodes"] if e["index"] == index) for n, r in results_by_model.items()}
        parts.append(img_tag(compare_curves_figure(by_model), f"reward curves of episode {index}, per model"))
    parts.append("</div>")
    return parts


def compare_curves_figure(episode_by_model: Mapping[str, Mapping[str, Any]]) -> Figure:
    """One episode under several models: a column per model, text-goal similarity above image-goal
    similarity, every axis with its own y range. ``episode_by_model`` maps a model label to that model's
    per-episode dict of :func:`liv.eval.metrics.evaluate_dataset` (with curves), all of one episode."""
    names = list(episode_by_model)
    first = episode_by_model[names[0]]
    fig = new_figure(0.5 + 3.0 * len(names), 4.4)  # two models: 650 px, two figures to a 1400 px page
    fig.set_layout_engine("constrained", h_pad=0.05, w_pad=0.05)
    axes = fig.subplots(2, len(names), sharex=True, squeeze=False)
    for c, name in enumerate(names):
        ep = episode_by_model[name]
        frames = np.arange(ep["num_frames"])
        for r, (key, goal, colour) in enumerate((("text", "text_goal", TEXT_COLOUR),
                                                 ("image", "image_goal", IMAGE_COLOUR))):
            ax = axes[r, c]
            ax.plot(frames, ep["curves"][key], color=colour, linewidth=1.5, gid=f"{key}:{name}")
            ax.set_title(f"VOC {ep[goal]['voc']:.2f}", loc="right", fontsize=8, color="#555")
            ax.tick_params(labelsize=7)
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel("S, text goal" if key == "text" else "S, image goal (last frame)", fontsize=8,
                              color=colour)
        axes[0, c].set_title(short_label(name, 28), loc="left", fontsize=10, fontweight="bold")
        axes[1, c].set_xlabel("frame", fontsize=8)
    outcome = {True: " (success)", False: " (failed)", None: ""}[first["succeeded"]]
    fig.suptitle(f"episode {first['index']}{outcome}: \u201c{short_label(first['task'], 90)}\u201d", fontsize=10)
    return fig

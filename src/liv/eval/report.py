"""`liv evaluate`'s self-contained HTML report of one model: metrics, confusion matrices, reward curves.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot global state, no display)
and embedded in the HTML as base64 PNG, so ``report.html`` is one file that opens offline.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liv.eval.figures import img_tag, new_figure, short_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from liv.data.episodes import EpisodeDataset

TEXT_COLOUR, IMAGE_COLOUR = "#1f77b4", "#d62728"
METRICS_NOTE = ("VOC: Spearman correlation of the value with time (1 = always rising). Negative rate: fraction of "
                "steps where the value falls. Alignment: Pearson correlation with t/T. Retrieval: fraction of "
                "episodes whose own text scores highest among all goal texts. VOC alone is satisfied by any "
                "monotone output; read it together with the confusion matrix.")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222;
       max-width: 1400px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 14px 0 6px; }
p.note { color: #555; font-size: 13px; max-width: 1000px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td.label, th.label { text-align: left; max-width: 360px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; } .grid img { border: 1px solid #eee; }
.pair img { max-width: calc(50% - 8px); } .trio img { max-width: calc(33.3% - 8px); }
img { max-width: 100%; height: auto; }
"""


def _thumbnails(dataset: EpisodeDataset | None, index: int, count: int = 4) -> np.ndarray | None:
    """Evenly spaced frames of one episode side by side -> (h, count*w, 3) uint8, or None."""
    if dataset is None:
        return None
    ep = dataset[index]
    picks = np.unique(np.linspace(0, len(ep) - 1, count).round().astype(int))
    frames = ep.read(picks.tolist())
    gap = np.full((frames.shape[1], max(2, frames.shape[2] // 40), 3), 255, np.uint8)
    parts = [p for f in frames for p in (f, gap)][:-1]
    return np.concatenate(parts, axis=1)


def _episode_figure(ep: dict[str, Any], dataset: EpisodeDataset | None) -> Figure:
    """Paper-style panel: a strip of frames above text-goal and image-goal similarity vs frame.

    The two curves get separate y axes: their ranges can differ by orders of magnitude (an image goal
    is the episode's own last frame), and one shared axis would flatten the smaller one.
    """
    strip = _thumbnails(dataset, ep["index"])
    width = 3.6
    # The strip's row is as tall as the image needs at the panel's width, so no blank band surrounds it.
    heights = ([0.85 * width * strip.shape[0] / strip.shape[1]] if strip is not None else []) + [1.3, 1.3]
    fig = new_figure(width, sum(heights) + 0.9)
    axes = fig.subplots(len(heights), 1, gridspec_kw={"height_ratios": heights})
    if strip is not None:
        axes[0].imshow(strip)
        axes[0].set_axis_off()
    frames = np.arange(ep["num_frames"])
    text_ax, image_ax = axes[-2], axes[-1]
    for ax, key, colour, label in ((text_ax, "text", TEXT_COLOUR, "text goal"),
                                   (image_ax, "image", IMAGE_COLOUR, "image goal (last frame)")):
        ax.plot(frames, ep["curves"][key], color=colour)
        ax.set_ylabel(f"S, {label}", fontsize=8, color=colour)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="y", useOffset=False)  # "+9.999e-1" offsets are unreadable here
        ax.grid(alpha=0.3)
    text_ax.sharex(image_ax)
    text_ax.tick_params(labelbottom=False)
    image_ax.set_xlabel("frame", fontsize=8)
    outcome = {True: " (success)", False: " (failed)", None: ""}[ep["succeeded"]]
    fig.suptitle(f"episode {ep['index']}{outcome}   VOC text {ep['text_goal']['voc']:.2f}, "
                 f"image {ep['image_goal']['voc']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig


def confusion_figure(matrix: list[list[float | None]], rows: list[str], cols: list[str], title: str) -> Figure:
    """A (K, C) confusion matrix (None = no episode) as a heatmap: rows are tasks, columns goal texts, each
    task's own text outlined and, up to 14 columns, every cell's value written in it."""
    m = np.array([[np.nan if x is None else x for x in row] for row in matrix], dtype=np.float64)
    m = m.reshape(len(rows), len(cols))
    fig = new_figure(max(5.0, 0.55 * len(cols) + 3.5), max(3.5, 0.45 * len(rows) + 2.5))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="similarity S")
    ax.set_xticks(range(len(cols)), [short_label(c) for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [short_label(r) for r in rows], fontsize=8)
    ax.set(xlabel="goal text", ylabel="episode task", title=title)
    from matplotlib.patches import Rectangle

    for i in range(min(len(rows), len(cols))):  # outline each task's own text
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=2))
    if len(cols) <= 14 and np.isfinite(m).any():
        lo, hi = np.nanmin(m), np.nanmax(m)
        for (i, j), x in np.ndenumerate(m):
            if np.isfinite(x):
                dark = hi > lo and (x - lo) / (hi - lo) < 0.6
                ax.text(j, i, f"{x:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    fig.tight_layout()
    return fig


def fmt_cell(x: Any, digits: int = 3) -> str:
    """A table cell's text: a float to ``digits`` decimals, None as an en dash, anything else escaped."""
    if x is None:
        return "\u2013"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return html.escape(str(x))


def _metric_row(label: str, r: Mapping[str, Any], n: str) -> str:
    cells = [n]
    for goal in ("text_goal", "image_goal"):
        cells += [fmt_cell(r[goal]["voc"]), fmt_cell(r[goal]["negative_rate"]), fmt_cell(r[goal]["alignment"])]
    cells += [fmt_cell(r["retrieval_accuracy"]["final"]), fmt_cell(r["retrieval_accuracy"]["mean"]),
              fmt_cell(r["auroc"])]
    rank = r.get("ranking", r)  # a task's ranking dict, or the overall means
    progress = r.get("progress") or {}
    cells += [fmt_cell(rank.get("pairwise_final")), fmt_cell(rank.get("kendall_tau_final")),
              fmt_cell(progress.get("pearson", r.get("progress_pearson")))]
    return f'<tr><td class="label">{html.escape(label)}</td>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _metrics_table(results: Mapping[str, Any]) -> str:
    signal = html.escape(str(results["dataset"].get("progress_signal") or "none in the data"))
    head = ('<tr><th class="label" rowspan="2">task</th><th rowspan="2">episodes<br>evaluated / selected</th>'
            '<th colspan="3">text goal</th><th colspan="3">image goal (last frame)</th>'
            '<th colspan="2">retrieval accuracy</th><th rowspan="2">AUROC<br>success vs failure</th>'
            '<th rowspan="2">pairwise acc.<br>success &gt; failure</th><th rowspan="2">Kendall &tau;<br>value, outcome</th>'
            '<th rowspan="2">progress r<br>(' + signal + ")</th></tr>"
            "<tr>" + "<th>VOC</th><th>neg. rate</th><th>alignment</th>" * 2 + "<th>final</th><th>mean</th></tr>")
    rows = [_metric_row(t["task"], t, f"{t['num_evaluated']} / {t['num_episodes']}") for t in results["per_task"]]
    ov = results["overall"]
    d = results["dataset"]
    rows.append(_metric_row("all tasks", ov, f"{ov['num_episodes']} / {d['num_selected']}")
                .replace("<tr>", '<tr style="font-weight:bold">', 1))
    return f"<table>{head}{''.join(rows)}</table>"


def _detection_section(detection: Mapping[str, Any]) -> list[str]:
    """The success-detection table (liv.eval.detection): each task's threshold and its held-out figures."""
    where = ("the --calibrate-on episodes" if detection["calibration"] == "dataset" else
             f"a seeded half of each task's labelled episodes (seed {detection['seed']}); figures on the other half")
    head = ('<tr><th class="label">task</th><th>threshold on final S</th><th>calibration episodes</th>'
            "<th>held-out episodes</th><th>precision</th><th>recall</th><th>F1</th></tr>")

    def row(label: str, r: Mapping[str, Any], bold: bool = False) -> str:
        cells = [fmt_cell(r.get("threshold"), 4), fmt_cell(r.get("calibration_episodes")), fmt_cell(r.get("n")),
                 fmt_cell(r.get("precision")), fmt_cell(r.get("recall")), fmt_cell(r.get("f1"))]
        style = ' style="font-weight:bold"' if bold else ""
        return (f'<tr{style}><td class="label">{html.escape(label)}</td>'
                + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")

    rows = [row(task, r) for task, r in detection["per_task"].items()]
    rows.append(row("all tasks (each at its own threshold)", detection["overall"], bold=True))
    return ["<h2>Success detection</h2>",
            f'<p class="note">A final-frame similarity at or above the task\'s threshold predicts success. '
            f"Thresholds maximise F1 on {html.escape(where)}. A task without both outcomes among its "
            "calibration episodes has no threshold (\u2013). success_thresholds.json holds them for "
            "`liv reward --success-thresholds` and the Gymnasium wrappers.</p>",
            f"<table>{head}{''.join(rows)}</table>"]


def html_page(title: str, body: str) -> str:
    """A complete, self-contained HTML document (inline CSS) around ``body``."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def write_json(obj: Any, path: Path) -> None:
    """``obj`` as indented JSON; NaN or infinity is refused (ValueError), as strict JSON readers would."""
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_report(results: Mapping[str, Any], out_dir: str | os.PathLike, dataset: EpisodeDataset | None = None,
                 episodes_per_task: int = 3, title: str = "LIV reward report",
                 up: tuple[str, str] | None = None) -> Path:
    """Write ``metrics.json`` (the results without curves) and a self-contained ``report.html``.

    ``results`` is :func:`liv.eval.metrics.evaluate_dataset`'s dict (with its curves). The report shows the
    metrics table, the language confusion matrices (final-frame and mean value) and, per task, the curves
    of ``episodes_per_task`` episodes (evaluated ones, the last slot going to a failed episode if the task
    has one); with the ``dataset`` the curves get a strip of frames above them. ``up`` = (relative address,
    text) links the page to the one it belongs to (a comparison). Returns the path of ``report.html``.
    """
    from liv.eval.metrics import without_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(without_curves(dict(results)), out / "metrics.json")
    path = out / "report.html"
    body = [f"<h1>{html.escape(title)}</h1>", *report_sections(results, dataset, episodes_per_task)]
    if up is not None:
        body.insert(1, f'<p class="note"><a href="{html.escape(up[0])}">{html.escape(up[1])}</a></p>')
    path.write_text(html_page(title, "\n".join(body)), encoding="utf-8")
    return path


def report_sections(results: Mapping[str, Any], dataset: EpisodeDataset | None = None,
                    episodes_per_task: int = 3) -> list[str]:
    """HTML fragments of one model's report (data note, metrics, confusion matrices, curves), no title."""
    d, ov, conf = results["dataset"], results["overall"], results["confusion"]
    model = results.get("model", {})
    dropped = (d.get("selection") or {}).get("note")  # what --max-episodes-per-task left out, if anything
    parts = [f'<p class="note">Data: {html.escape(str(d["root"]))} ({html.escape(str(d["format"]))}), '
             f'{d["num_episodes"]} episodes, {len(results["tasks"])} tasks; {d["num_evaluated"]} evaluated '
             f'({"successful episodes only" if d["success_flags"] else "no success flags: all episodes"}). '
             + (f'Selection: {html.escape(dropped)}. ' if dropped else "")
             + f'Model: {html.escape(str(model.get("path") or model.get("preset") or "unnamed"))}, '
             f'{model.get("embed_dim", "?")}-d embeddings.</p>',
             "<h2>Metrics</h2>", _metrics_table(results),
             f'<p class="note">{METRICS_NOTE}</p>']
    if results.get("detection"):
        parts += _detection_section(results["detection"])
    if results["tasks"]:
        parts.append("<h2>Language confusion matrix</h2>")
        parts.append(f'<p class="note">Row: the task of the episodes; column: the goal text; cell: mean '
                     f"similarity (outlined: own text). Retrieval accuracy per episode: final "
                     f'{fmt_cell(ov["retrieval_accuracy"]["final"])}, '
                     f'mean {fmt_cell(ov["retrieval_accuracy"]["mean"])}; '
                     f'per task row: final {fmt_cell(ov["task_retrieval_accuracy"]["final"])}, '
                     f'mean {fmt_cell(ov["task_retrieval_accuracy"]["mean"])}.</p><div class="grid pair">')
        for variant, label in (("final", "final-frame value"), ("mean", "mean value over the episode")):
            fig = confusion_figure(conf[variant], conf["rows"], conf["columns"], label)
            parts.append(img_tag(fig, f"confusion matrix, {label}"))
        parts.append("</div>")

    parts.append("<h2>Reward curves</h2>")
    parts.append('<p class="note">Similarity of each frame with the episode\'s text (blue) and with its last '
                 "frame (red), as in the LIV paper's figures; each curve has its own y axis.</p>")
    for k, task in enumerate(results["tasks"]):
        mine = [e for e in results["episodes"] if e["task_index"] == k and "curves" in e]
        failed = [e for e in mine if e["succeeded"] is False][:1]
        shown = [e for e in mine if e["evaluated"]][:max(episodes_per_task - len(failed), 0)] + failed
        if not shown:
            continue
        parts.append(f"<h3>{html.escape(task)}</h3><div class=\"grid\">")
        parts += [img_tag(_episode_figure(e, dataset), f"episode {e['index']}") for e in shown]
        parts.append("</div>")
    return parts

"""The model card written beside a saved model: ``README.md`` with the YAML front matter the Hugging Face Hub
reads, so that uploading the folder publishes a model that says what it is.

The front matter holds ``library_name: liv``, the licence, tags, the base model and training data when they
are Hub repositories, and the last ``liv evaluate`` figures as a ``model-index`` when they are known. What
fills it comes from the model's provenance (``license``, ``base_model``, ``datasets``, written by
liv when it loads a named model) and, for the figures, from :func:`write_model_card`'s ``evaluation``
(``liv evaluate --card`` passes its results).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liv.model import ModelConfig

CARD_FILE = "README.md"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

_FIGURES = (  # (metric type, what it is called, where it is in evaluate_dataset's results)
    ("voc", "text-goal VOC", ("text_goal", "voc")),
    ("negative_rate", "text-goal negative rate", ("text_goal", "negative_rate")),
    ("image_goal_voc", "image-goal VOC", ("image_goal", "voc")),
    ("retrieval_accuracy", "language retrieval accuracy (final frame)", ("retrieval_accuracy", "final")),
    ("auroc", "success/failure AUROC", ("auroc",)),
)


def evaluation_figures(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of ``liv.eval.metrics.evaluate_dataset``'s results (or a ``metrics.json``) ->
    {"dataset": name, "episodes": n, "tasks": n, "figures": [(type, name, value), ...]} (values None left out)."""
    overall = results.get("overall", {})
    figures = []
    for kind, label, keys in _FIGURES:
        value: Any = overall
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)):
            figures.append((kind, label, round(float(value), 4)))
    root = str(results.get("dataset", {}).get("root", "")) or "dataset"
    return {"dataset": Path(root).name or root, "episodes": overall.get("num_episodes"),
            "tasks": len(results.get("tasks", [])), "figures": figures}


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Lines of YAML for dicts, lists and scalars (strings written as JSON strings, which YAML reads)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, (Mapping, list, tuple)) and v:
                lines.append(f"{pad}{k}:")
                lines += _yaml(v, indent + 2)
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            sub = _yaml(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}" if sub else f"{pad}- []")
            lines += sub[1:]
    else:
        lines.append(pad + _scalar(value))
    return lines


def _scalar(v: Any) -> str:
    if isinstance(v, (Mapping, list, tuple)):  # empty
        return "{}" if isinstance(v, Mapping) else "[]"
    if v is None or isinstance(v, (bool, int, float)):
        return json.dumps(v)
    return json.dumps(str(v))


def model_card(config: ModelConfig, evaluation: Mapping[str, Any] | None = None, title: str | None = None) -> str:
    """The text of ``README.md`` for a model with ``config``; ``evaluation`` as for :func:`write_model_card`."""
    prov = dict(config.provenance)
    clip = config.clip
    hub_ids = lambda v: [x for x in ([v] if isinstance(v, str) else v or []) if isinstance(x, str) and _HUB_ID.match(x)]  # noqa: E731
    meta: dict[str, Any] = {"library_name": "liv", "license": str(prov.get("license") or "unknown"),
                            "tags": ["liv", "robotics", "reward-model", "vision-language", "clip"]
                            + ([config.preset] if config.preset else [])}
    if hub_ids(prov.get("base_model")):
        meta["base_model"] = hub_ids(prov.get("base_model"))[0]
    if hub_ids(prov.get("datasets")):
        meta["datasets"] = hub_ids(prov.get("datasets"))
    figures = evaluation_figures(evaluation) if evaluation is not None else None
    name = title or "LIV model"
    if figures and figures["figures"]:
        meta["model-index"] = [{"name": name, "results": [{
            "task": {"type": "robotics", "name": "reward quality"},
            "dataset": {"type": figures["dataset"], "name": figures["dataset"]},
            "metrics": [{"type": kind, "name": label, "value": value} for kind, label, value in figures["figures"]],
        }]}]
    body = [f"# {name}", "",
            "A LIV (Language-Image Value learning) model: image and text encoders whose cosine similarity is a "
            "value function, and whose increments are a reward, for robot tasks given in words or images.", "",
            "## Use", "", "```python", "import liv", "", 'model = liv.load("hf://OWNER/REPO")  # this repository',
            'values = model.similarity(frames, "open the drawer")  # (N,) per frame', "```", "",
            "or `liv reward --model hf://OWNER/REPO VIDEO --goal \"open the drawer\" --out rewards/`. The weights are "
            "`model.safetensors` (OpenAI CLIP key names); `config.json` holds the architecture and preprocessing.",
            "", "## Model", "",
            f"- architecture: ResNet CLIP{f' (preset {config.preset})' if config.preset else ''}, {clip.embed_dim}-d "
            f"embeddings, {clip.image_resolution} px images, vision blocks {list(clip.vision_layers)} of width "
            f"{clip.vision_width}, text transformer {clip.transformer_layers} x {clip.transformer_width}",
            f"- preprocessing: resize with antialias {'on' if config.antialias else 'off'}, centre crop, CLIP "
            "normalisation"]
    body += [f"- {key}: {_show(value)}" for key, value in prov.items()]
    if figures and figures["figures"]:
        body += ["", "## Evaluation", "",
                 f"`liv evaluate` on {figures['dataset']} ({figures['episodes']} episodes, {figures['tasks']} tasks):",
                 "", "| metric | value |", "|---|---|"]
        body += [f"| {label} | {value:.4f} |" for _, label, value in figures["figures"]]
    return "---\n" + "\n".join(_yaml(meta)) + "\n---\n\n" + "\n".join(body) + "\n"


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 200 else text[:199] + "\u2026"


def write_model_card(directory: str | Path, config: ModelConfig, evaluation: Mapping[str, Any] | None = None,
                     title: str | None = None) -> Path:
    """Write ``directory/README.md`` for ``config`` atomically -> its path.

    ``evaluation``: results of ``liv.eval.metrics.evaluate_dataset`` (or a ``metrics.json`` they were written
    to), whose headline figures go into the front matter's ``model-index`` and a table.
    """
    from liv.checkpoints.native import atomic_write

    path = Path(directory) / CARD_FILE
    text = model_card(config, evaluation, title)
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


def card_folder(path: Path | None, option: str) -> Path:
    """``path`` if it is a liv model folder whose card can be rewritten, else ValueError naming ``option``."""
    from liv.checkpoints.native import CONFIG_FILE

    if path is None or not (path / CONFIG_FILE).is_file():
        raise ValueError(f"{option}: the model must be a liv model folder (model.safetensors + config.json) to "
                         f"hold a model card; {path if path is not None else 'a preset'} is not one (`liv convert` "
                         "makes one)")
    return path


def read_front_matter(text: str) -> Sequence[str]:
    """The lines between a card's opening and closing ``---`` (for tests and checks); [] if there are none."""
    lines = text.splitlines()
    if not lines or lines[0] != "---" or "---" not in lines[1:]:
        return []
    return lines[1:lines.index("---", 1)]


__all__ = ["CARD_FILE", "card_folder", "evaluation_figures", "model_card", "read_front_matter", "write_model_card"]

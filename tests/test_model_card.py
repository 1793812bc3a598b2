"""The model card `model.save` writes: Hub front matter a Hub tool reads back, and `liv evaluate --card`'s figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

import liv
from liv.checkpoints.model_card import read_front_matter
from liv.cli import main

huggingface_hub = pytest.importorskip("huggingface_hub")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from liv.data.frame_folders import write_frame_folders

    root = tmp_path_factory.mktemp("card")
    rng = np.random.default_rng(0)
    write_frame_folders(root / "frames", [("open the drawer", rng.integers(0, 256, (4, 24, 32, 3), np.uint8)),
                                          ("close the drawer", rng.integers(0, 256, (3, 24, 32, 3), np.uint8))])
    return root / "frames"


def test_a_fresh_model_card_says_what_is_known(tmp_path):
    liv.create("clip-tiny", seed=2).save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    text = (tmp_path / "m" / "README.md").read_text()
    card = huggingface_hub.ModelCard(text)
    assert card.data.library_name == "liv" and card.data.license == "unknown"
    assert card.data.base_model is None and card.data.eval_results is None
    assert read_front_matter(text)[0] == 'library_name: "liv"'
    assert "- seed: 2" in text and "preset clip-tiny" in text


def test_evaluate_card_puts_the_figures_in_the_front_matter(tmp_path, data, capsys):
    liv.create("clip-tiny", seed=0).save(tmp_path / "m")
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(data), "--out", str(tmp_path / "ev"),
                 "--card"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())["overall"]
    card = huggingface_hub.ModelCard.load(tmp_path / "m" / "README.md")
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}  # the Hub's own model-index parser
    assert results["voc"] == round(metrics["text_goal"]["voc"], 4)
    assert results["retrieval_accuracy"] == round(metrics["retrieval_accuracy"]["final"], 4)
    assert card.data.eval_results[0].dataset_name == "frames"
    assert "| text-goal VOC |" in card.text
    assert "wrote the figures into" in capsys.readouterr().out
    # the weights and config are the model's still
    assert liv.load(tmp_path / "m").config.provenance == {"init": "random", "seed": 0}


def test_evaluate_card_needs_a_model_folder_and_says_so_before_any_work(tmp_path, data, capsys):
    assert main(["evaluate", "--model", "clip-tiny", "--data", str(data), "--out", str(tmp_path / "ev"),
                 "--card"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("liv evaluate: error: --card: the model must be a liv model")
    assert not (tmp_path / "ev").exists()

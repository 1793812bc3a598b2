"""`liv demo` end to end through the real CLI, at a tiny size; a rerun reuses data and models."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("metaworld")

ARGS = ["--tasks", "reach-v3", "button-press-topdown-v3", "--train-episodes", "1", "--heldout-episodes", "1",
        "--failures", "1", "--size", "32", "--steps", "2", "--batch-size", "4", "--workers", "1",
        "--no-progress"]


def _demo(out):
    return subprocess.run([sys.executable, "-m", "liv", "demo", "--out", str(out), *ARGS], capture_output=True,
                          text=True, timeout=600)


def test_demo_pipeline_at_tiny_size(tmp_path):
    out = tmp_path / "demo"
    first = _demo(out)
    # two training steps cannot reach the quality bar: exit status 1, and it says so
    assert first.returncode == 1, first.stdout + first.stderr
    assert "does NOT reach the quality bar" in first.stdout
    summary = json.loads((out / "metrics.json").read_text())
    assert set(summary["figures"]) == {"liv", "clip", "vip-i"}
    for figures in summary["figures"].values():
        assert -1 <= figures["text_voc_median"] <= 1 and 0 <= figures["retrieval_accuracy"] <= 1
        assert set(figures["passes"]) == {"text_voc_median", "retrieval_accuracy", "image_voc_median"}
    assert summary["figures"]["liv"]["auroc"] is not None  # held-out failures make AUROC defined
    page = (out / "report.html").read_text()
    assert "Quality on held-out episodes" in page and "Objectives compared" in page and "<img" in page
    assert "Does the reward read the instruction?" in page
    assert (out / "key_figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched from the network
    for objective in ("liv", "clip", "vip-i"):  # `liv plan` and `liv bc` render as each model was trained
        config = json.loads((out / "runs" / objective / "model" / "config.json").read_text())
        assert config["provenance"]["rendering"] == {"simulator": "metaworld", "camera": "closeup", "size": [32, 32],
                                                     "record_every": 4}

    again = _demo(out)
    assert again.returncode == 1
    assert again.stdout.count("reusing the trained model") == 3  # liv + clip + vip-i
    assert json.loads((out / "metrics.json").read_text())["figures"] == summary["figures"]

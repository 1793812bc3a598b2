"""`LIVModel.source_format`: the format liv.load read, as the reader named it; `liv info` prints it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import liv
from liv.checkpoints import foreign, native
from liv.checkpoints.formats import FORMAT_DESCRIPTIONS
from liv.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_state_dict):
    """A clip-tiny's weights in each format liv writes or imports (OpenAI TorchScript: see below)."""
    root = tmp_path_factory.mktemp("formats")
    sd = tiny_state_dict
    liv.create("clip-tiny", seed=0).save(root / "dir")
    torch.save({"liv": {f"module.model.{k}": v for k, v in sd.items()}}, root / "model.pt")
    torch.save({"liv": {f"model.{k}": v for k, v in sd.items()}, "optimizer": {}, "global_step": 7},
               root / "snapshot.pt")
    torch.save(sd, root / "plain.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(root / "plain.safetensors"))
    torch.save({"state_dict": sd, "epoch": 3}, root / "lightning.ckpt")
    return root


@pytest.mark.parametrize("name, fmt", [
    ("dir", "liv-model"), ("dir/model.safetensors", "liv-model"), ("model.pt", "liv-release"),
    ("snapshot.pt", "liv-snapshot"), ("plain.pth", "clip-state-dict"),
    ("plain.safetensors", "safetensors-state-dict"), ("lightning.ckpt", "training-checkpoint")])
def test_load_names_the_format_it_read(files, name, fmt):
    assert liv.load(files / name).source_format == fmt


def test_openai_torchscript(reference_fixtures):
    assert liv.load(reference_fixtures / "clip_openai.jit.pt").source_format == "openai-torchscript"


def test_every_format_has_a_description_and_a_new_model_has_none():
    assert set(FORMAT_DESCRIPTIONS) == {native.FORMAT_NAME, *foreign.FORMATS}
    assert liv.create("clip-tiny").source_format is None


def test_the_format_is_the_files_not_the_history(files, tmp_path):
    liv.load(files / "model.pt").save(tmp_path / "converted")
    converted = liv.load(tmp_path / "converted")
    assert converted.source_format == "liv-model"
    assert converted.config.provenance["source_format"] == "liv-release"  # where the weights came from


def test_liv_info_prints_the_format(files, capsys):
    assert main(["info", str(files / "dir")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["format", "liv", "directory", "(model.safetensors", "+", "config.json)",
                                "(liv-model)"]
    assert main(["info", str(files / "model.pt")]) == 0
    assert "  format        reference LIV model.pt (liv-release)" in capsys.readouterr().out.splitlines()
    assert main(["info", "--json", str(files / "snapshot.pt")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "liv-snapshot"
    assert info["format_description"] == "reference LIV training snapshot"

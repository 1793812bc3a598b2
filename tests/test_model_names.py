"""One set of model names everywhere a model is named: local paths (which always win), presets; every
model given to a command is checked before its work starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import liv
from liv.cli import COMMANDS, build_parser, main
from liv.model_names import model_name_problem, resolve_model


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved clip-tiny model (seed 0, the preset's default seed) and a 2-episode frame-folder dataset."""
    from liv.data.frame_folders import write_frame_folders

    root = tmp_path_factory.mktemp("names")
    liv.create("clip-tiny", seed=0).save(root / "model")
    rng = np.random.default_rng(0)
    write_frame_folders(root / "frames", [("open the drawer", rng.integers(0, 256, (4, 24, 32, 3), np.uint8)),
                                          ("close the drawer", rng.integers(0, 256, (3, 24, 32, 3), np.uint8))])
    (root / "notes.txt").write_text("not a model\n")
    return root


def test_compare_takes_a_folder_and_a_preset(files, tmp_path, capsys):
    out = tmp_path / "cmp"
    status, stdout, err = run(capsys, "compare", "--models", files / "model", "clip-tiny", "--data", files / "frames",
                              "--out", out)
    assert status == 0, err
    results = json.loads((out / "compare.json").read_text())
    assert list(results) == [files.name, "clip-tiny"]  # a folder "model" is labelled by the run folder above it
    # The preset at its default seed 0 is the very model that was saved: the same numbers.
    assert results[files.name]["overall"] == results["clip-tiny"]["overall"]
    assert results["clip-tiny"]["model"]["path"] == "clip-tiny"


@pytest.mark.parametrize("second, named", [
    ("clip-tinyy", "clip-tinyy: no such file or folder, and not a model name"),
    ("notes.txt", "not a checkpoint: unrecognised file header"),
    ("broken", "config.json is not valid JSON"),
])
def test_a_bad_second_model_fails_before_any_work(files, tmp_path, capsys, second, named):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    second_path = {"notes.txt": files / "notes.txt", "broken": broken}.get(second, second)
    out = tmp_path / "cmp"
    status, stdout, err = run(capsys, "compare", "--models", files / "model", second_path, "--data",
                              files / "frames", "--out", out)
    assert status == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("liv compare: error: ") and named in err and str(second_path) in err
    assert stdout == ""  # the first model's evaluation prints its summary: it never started
    assert not out.exists()


def test_a_bad_name_is_refused_while_parsing(capsys):
    # bc and plan need the simulator to run, but their names are checked before they would start it.
    for argv, option in [(["info", "clip-huge"], "model"), (["convert", "clip-huge", "out"], "source"),
                         (["train", "--data", ".", "--out", "o", "--init", "clip-huge"], "--init"),
                         (["bc", "--data", ".", "--model", "clip-tiny", "clip-huge"], "--model"),
                         (["plan", "--model", "clip-huge", "--tasks", "reach-v3"], "--model")]:
        status, _, err = run(capsys, *argv)
        assert status == 2 and err.startswith(f"liv {argv[0]}: error: {option}: clip-huge: no such file"), err
        assert "clip-tiny" in err  # the message lists the names there are


def _model_options() -> dict[str, list[str]]:
    """Command -> the fields that name a model: those checked by model_name_problem."""
    import dataclasses

    found = {}
    for name, command in COMMANDS.items():
        fields = [f.name for f in dataclasses.fields(command.args()) if f.metadata.get("check") is model_name_problem]
        if fields:
            found[name] = fields
    return found


def test_every_model_option_takes_the_same_names():
    options = _model_options()
    assert options == {"info": ["model"], "convert": ["source"], "embed": ["model"], "train": ["init"],
                       "reward": ["model"], "evaluate": ["model"], "compare": ["models"], "bc": ["model"],
                       "plan": ["model"]}
    parser = build_parser()
    argv = {"info": ["info", "clip-tiny"], "convert": ["convert", "clip-tiny", "out"],
            "embed": ["embed", "--model", "clip-tiny", "--out", "e.npz"],
            "train": ["train", "--data", ".", "--out", "o", "--init", "clip-tiny"],
            "reward": ["reward", "--model", "clip-tiny", "--out", "o"],
            "evaluate": ["evaluate", "--model", "clip-tiny", "--data", ".", "--out", "o"],
            "compare": ["compare", "--models", "clip-small", "clip-tiny", "--data", ".", "--out", "o"],
            "bc": ["bc", "--data", ".", "--model", "clip-tiny"], "plan": ["plan", "--model", "clip-tiny"]}
    for command, fields in options.items():
        value = getattr(parser.parse_args(argv[command]), fields[0])
        assert value in ("clip-tiny", ["clip-tiny"], ["clip-small", "clip-tiny"]), (command, value)


def test_preset_names_run_in_info_embed_convert_and_evaluate(files, tmp_path, capsys):
    status, out, err = run(capsys, "info", "clip-tiny", "--json")
    assert status == 0, err
    assert json.loads(out)["preset"] == "clip-tiny" and json.loads(out)["provenance"] == {"init": "random", "seed": 0}
    assert run(capsys, "embed", "--model", "clip-tiny", "--text", "open", "--out", tmp_path / "e.npz")[0] == 0
    expected = liv.create("clip-tiny", seed=0).encode_texts(["open"]).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "e.npz")["text_embeddings"], expected)
    assert run(capsys, "convert", "clip-small", tmp_path / "small")[0] == 0
    assert liv.load(tmp_path / "small").config.preset == "clip-small"
    status, _, err = run(capsys, "evaluate", "--model", "clip-tiny", "--data", files / "frames", "--out", tmp_path / "ev")
    assert status == 0, err
    assert "clip-tiny (random init)" in (tmp_path / "ev" / "report.html").read_text()


def test_load_a_preset_with_its_seed_and_a_local_path_wins(tmp_path, monkeypatch):
    a, b = liv.load("clip-tiny", seed=3), liv.create("clip-tiny", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.clip.text_projection, liv.load("clip-tiny").clip.text_projection)
    liv.create("clip-tiny", seed=5).save(tmp_path / "clip-tiny")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("clip-tiny").path == Path("clip-tiny")
    assert model_name_problem("clip-tiny") is None
    local = liv.load("clip-tiny")
    assert local.config.provenance == {"init": "random", "seed": 5}  # the saved folder, not the preset's seed 0
    with pytest.raises(liv.CheckpointError, match="^nope: no such file or folder, and not a model name"):
        liv.load("nope")


def test_the_name_check_imports_no_torch(tmp_path):
    # The check runs while the command line is parsed; for a path it must not cost a torch import.
    source = Path(liv.__file__).parent / "model_names.py"
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('model_names', {str(source)!r})\n"
            "m = sys.modules['model_names'] = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            f"assert m.model_name_problem({str(tmp_path)!r}) is None\n"
            "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr


def test_simulation_tables_tell_two_runs_models_apart(files, tmp_path):
    import shutil

    from liv.sim.commands import checked_models

    for run in ("a", "b"):  # two runs each with a folder "model": one row each, not one overwriting the other
        shutil.copytree(files / "model", tmp_path / run / "model")
    assert checked_models([str(tmp_path / "a" / "model"), str(tmp_path / "b" / "model"), "clip-tiny"]) == [
        "a", "b", "clip-tiny (random init)"]

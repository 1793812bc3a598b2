"""Model labels of `liv compare`: the run a model belongs to, not the generic last path component."""

from __future__ import annotations

from liv.eval.labels import folder_names, model_labels


def test_generic_components_give_way_to_the_run_folder(tmp_path):
    runs = tmp_path / "runs"
    assert model_labels([runs / "ft" / "model"]) == ["ft"]
    assert model_labels([runs / "ft" / "checkpoints" / "step_00000600"]) == ["ft/step_00000600"]
    assert model_labels([runs / "ft" / "checkpoints" / "step_00000600" / "model.safetensors"]) == ["ft/step_00000600"]
    assert model_labels([tmp_path / "release" / "model.pt", tmp_path / "RN50.pt"]) == ["release", "RN50"]
    assert model_labels([runs / "hf" / "checkpoint-1200"]) == ["hf/checkpoint-1200"]
    assert model_labels([runs / "ft" / "model", runs / "ft" / "checkpoints" / "step_00000600"]) == [
        "ft", "ft/step_00000600"]


def test_presets_keep_their_names_and_relative_paths_find_their_run(tmp_path, monkeypatch):
    assert model_labels(["clip-rn50", "clip-tiny"]) == ["clip-rn50", "clip-tiny"]
    run = tmp_path / "runs" / "ft" / "model"
    run.mkdir(parents=True)
    monkeypatch.chdir(run)
    assert model_labels(["."]) == ["ft"]
    monkeypatch.chdir(run.parent)
    assert model_labels(["model"]) == ["ft"]  # an existing path, though it has no separator


def test_collisions_take_more_of_the_path_and_repeats_are_numbered(tmp_path):
    a, b, c = tmp_path / "a" / "ft" / "model", tmp_path / "b" / "ft" / "model", tmp_path / "other" / "model"
    assert model_labels([a, b, c]) == ["a/ft", "b/ft", "other"]
    assert model_labels([a, a]) == ["ft", "ft #2"]
    assert model_labels([a, b, a]) == ["a/ft", "b/ft", "a/ft #2"]
    s1 = tmp_path / "x" / "checkpoints" / "step_1"
    s2 = tmp_path / "y" / "checkpoints" / "step_1"
    assert model_labels([s1, s2]) == ["x/step_1", "y/step_1"]
    # A name that is also a path's label, and two folders that differ only by a generic component.
    labels = model_labels([tmp_path / "same", tmp_path / "same" / "model", "same"])
    assert len(set(labels)) == 3 and labels[2] == "same"


def test_folder_names_are_safe_and_distinct():
    assert folder_names(["ft/step_1", "ft_step_1", "..", "", "a b"]) == [
        "ft_step_1", "ft_step_1-2", "model", "model-2", "a_b"]

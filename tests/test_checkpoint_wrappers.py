"""CLIP weights inside other tools' wrappers: key prefixes and training-checkpoint nesting (the
weights-only unpickler and its stand-ins: test_checkpoint_torch_pickle.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

import liv
from liv.checkpoints import foreign
from liv.checkpoints.foreign import CheckpointError, read_foreign_state_dict
from liv.checkpoints.wrappers import COMPILE_WRAPPER, HOLDER_NAMES, MAX_DEPTH
from liv.cli import main as cli_main
from checkpoint_states import assert_same, prefixed


# --- key prefixes ---------------------------------------------------------------------------------

# DDP and friends, the reference LIV, liv's LIVModel, a name liv has no list entry for, torch.compile.
_WRAPPERS = ("module.", "model.", "clip.", "backbone.", COMPILE_WRAPPER + ".")
# Every order of up to three distinct wrappers, and each wrapper twice (a model wrapped twice over).
_PREFIX_CHAINS = sorted(
    {"".join(c) for n in range(4) for c in itertools.permutations(_WRAPPERS, n)}
    | {w + w for w in _WRAPPERS}
)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module.",
                                    "model.clip.", "module.model."])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_prefixed_files_round_trip(tmp_path, tiny_state_dict, prefix, legacy):
    path = tmp_path / "weights.pt"
    torch.save(prefixed(tiny_state_dict, prefix), path, _use_new_zipfile_serialization=not legacy)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.format == "clip-state-dict" and ckpt.location == ()
    assert_same(ckpt.state_dict, tiny_state_dict)


@pytest.mark.parametrize("wrap", ["compile", "dataparallel", "compile(dataparallel)",
                                  "dataparallel(compile)", "liv-model"])
def test_state_dicts_of_really_wrapped_modules(tmp_path, tiny_state_dict, wrap):
    # The real wrappers, not hand-written prefixes (compiling is lazy: nothing is traced here).
    model = liv.create("clip-tiny", seed=0)
    module = {
        "compile": lambda: torch.compile(model.clip),
        "dataparallel": lambda: torch.nn.DataParallel(model.clip),
        "compile(dataparallel)": lambda: torch.compile(torch.nn.DataParallel(model.clip)),
        "dataparallel(compile)": lambda: torch.nn.DataParallel(torch.compile(model.clip)),
        "liv-model": lambda: model,
    }[wrap]()
    saved = module.state_dict()
    assert sorted(saved) != sorted(tiny_state_dict), "the wrapper should have renamed the keys"
    path = tmp_path / "wrapped.pt"
    torch.save(saved, path)
    assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)


def test_compiled_submodule_keys_lose_orig_mod(tmp_path, tiny_state_dict):
    model = liv.create("clip-tiny", seed=0)
    model.clip.visual = torch.compile(model.clip.visual)
    saved = model.clip.state_dict()
    assert "visual._orig_mod.conv1.weight" in saved
    path = tmp_path / "compiled_visual.pt"
    torch.save(saved, path)
    assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)


def test_keys_that_clash_without_orig_mod_are_refused(tmp_path, tiny_state_dict):
    sd = dict(tiny_state_dict)
    sd["visual._orig_mod.conv1.weight"] = tiny_state_dict["visual.conv1.weight"] + 1
    path = tmp_path / "clash.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"same once '_orig_mod\.' is removed: \['visual\.conv1\.weight'\]"):
        read_foreign_state_dict(path)


# --- the CLIP root among other keys ---------------------------------------------------------------


def test_swa_averaged_model_state_dict(tmp_path, tiny_state_dict):
    # torch.optim.swa_utils.AveragedModel: module.<CLIP key> plus its own n_averaged counter.
    swa = torch.optim.swa_utils.AveragedModel(liv.create("clip-tiny", seed=0).clip)
    saved = swa.state_dict()
    assert "n_averaged" in saved and "module.positional_embedding" in saved
    path = tmp_path / "swa.pt"
    torch.save(saved, path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.format == "clip-state-dict" and ckpt.location == ()
    assert_same(ckpt.state_dict, tiny_state_dict)


@pytest.mark.parametrize("others", [
    {"criterion.weight": torch.ones(3)},
    {"loss_fn.class_weights": torch.ones(3), "loss_fn.margin": torch.tensor(0.2), "step_count": torch.tensor(7)},
], ids=["criterion", "loss_fn"])
def test_lightning_module_with_another_submodule(tmp_path, tiny_state_dict, others):
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 1, "state_dict": {**prefixed(tiny_state_dict, "model."), **others}}, path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.location == ("state_dict",) and ckpt.format == "training-checkpoint"
    assert_same(ckpt.state_dict, tiny_state_dict)


@pytest.mark.parametrize("prefix", ["clip_model.", "backbone.", "encoder.", "policy.encoder._orig_mod.",
                                    "net.module.", "visual."])
def test_any_attribute_name_holding_the_model(tmp_path, tiny_state_dict, prefix):
    # "visual.": a wrapper attribute spelt like a CLIP tower must still be taken off whole.
    path = tmp_path / "wrapped.pt"
    torch.save({"step": 3, "model": prefixed(tiny_state_dict, prefix)}, path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.location == ("model",)
    assert_same(ckpt.state_dict, tiny_state_dict)


def test_a_clip_key_outside_the_root_is_refused_naming_both(tmp_path, tiny_state_dict):
    sd = {**prefixed(tiny_state_dict, "module."), "positional_embedding": tiny_state_dict["positional_embedding"] + 1}
    path = tmp_path / "half_wrapped.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: holds CLIP weights under keys 'module.*' and CLIP keys outside them: "
                              "'positional_embedding'")
    # The same for a whole tower (other values) under another prefix, and for a nested dict.
    sd = {**prefixed(tiny_state_dict, "model."),
          **{"text." + k: v + 1 for k, v in tiny_state_dict.items() if k.startswith("transformer.")}}
    torch.save({"state_dict": sd}, path)
    with pytest.raises(CheckpointError, match=r"under \['state_dict'\] keys 'model\.\*' and CLIP keys outside "
                                              r"them: 'text\.transformer\."):
        read_foreign_state_dict(path)


def test_a_submodule_exposed_under_a_second_name_is_not_a_stray(tmp_path, tiny_state_dict):
    # A policy that keeps the CLIP model and also its image tower as an attribute of its own.
    policy = torch.nn.Module()
    policy.clip = liv.create("clip-tiny", seed=0).clip
    policy.visual = policy.clip.visual
    policy.head = torch.nn.Linear(2, 2)
    saved = policy.state_dict()
    assert "visual.conv1.weight" in saved and "clip.visual.conv1.weight" in saved
    path = tmp_path / "policy.pt"
    torch.save(saved, path)
    assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)
    # Control: once the second copy differs, it is a stray CLIP key again.
    saved["visual.conv1.weight"] = saved["visual.conv1.weight"] + 1
    torch.save(saved, path)
    with pytest.raises(CheckpointError, match=r"under keys 'clip\.\*' and CLIP keys outside them: "
                                              r"'visual\.conv1\.weight';"):
        read_foreign_state_dict(path)


def test_missing_keys_are_named_as_they_would_appear(tmp_path, tiny_state_dict):
    sd = prefixed({k: v for k, v in tiny_state_dict.items() if k != "text_projection"}, "module.")
    sd["n_averaged"] = torch.tensor(1)
    path = tmp_path / "incomplete.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert message.startswith(f"{path}: no recognisable CLIP state dict: missing module.text_projection; keys found: ")
    assert "positional_embedding," not in message


@pytest.mark.parametrize("ema", ["model_ema.", "ema.", "model_ema.module.", "ema_model."])
def test_prefix_level_ema_copy_loses_to_the_raw_weights(tmp_path, tiny_state_dict, ema):
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in tiny_state_dict.items()}
    path = tmp_path / "lightning_ema.ckpt"
    torch.save({"state_dict": {**prefixed(tiny_state_dict, "model."), **prefixed(shifted, ema)}, "epoch": 2}, path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.location == ("state_dict",)
    assert_same(ckpt.state_dict, tiny_state_dict)
    # Under a name liv has no preference for, the EMA copy still loses.
    torch.save({**prefixed(tiny_state_dict, "model.backbone."), **prefixed(shifted, ema + "backbone.")}, path)
    assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)
    # Control: the EMA copy alone is taken.
    torch.save(prefixed(shifted, ema), path)
    assert_same(read_foreign_state_dict(path).state_dict, shifted)


def test_two_models_under_unknown_prefixes_are_refused(tmp_path, tiny_state_dict):
    path = tmp_path / "distill.ckpt"
    torch.save({"state_dict": {**prefixed(tiny_state_dict, "student."), **prefixed(tiny_state_dict, "teacher.")}}, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert message.startswith(f"{path}: holds several CLIP state dicts, under ")
    assert "['state_dict'] keys 'student.*'" in message and "['state_dict'] keys 'teacher.*'" in message


# --- nesting --------------------------------------------------------------------------------------


def _optimizer_state() -> dict:
    return {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(4)}},
            "param_groups": [{"lr": 1e-5, "params": [0]}]}


# Each layout as the tool saves it; expected: (location, format, extras).
_LAYOUTS = {
    "flat": (lambda w: w, (), "clip-state-dict", {}),
    "open_clip": (lambda w: {"epoch": 2, "name": "run-1", "state_dict": w, "optimizer": _optimizer_state()},
                  ("state_dict",), "training-checkpoint", {"epoch": 2, "name": "run-1"}),
    "lightning": (lambda w: {
        "epoch": 4, "global_step": 100, "pytorch-lightning_version": "2.4.0", "state_dict": w,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 5}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val/loss'}": {"best_model_score": torch.tensor(0.25),
                                                                 "best_model_path": "epoch=3.ckpt"}},
        "optimizer_states": [_optimizer_state()], "lr_schedulers": [],
        "hparams_name": "kwargs", "hyper_parameters": {"lr": 1e-5, "batch_size": 64}},
        ("state_dict",), "training-checkpoint",
        {"epoch": 4, "global_step": 100, "pytorch-lightning_version": "2.4.0", "hparams_name": "kwargs"}),
    "reference_liv": (lambda w: {"liv": w, "optimizer": _optimizer_state(), "global_step": 7},
                      ("liv",), "liv-snapshot", {"global_step": 7}),
    "pytorch_tutorial": (lambda w: {"epoch": 1, "model_state_dict": w, "optimizer_state_dict": _optimizer_state(),
                                    "loss": 0.5},
                         ("model_state_dict",), "training-checkpoint", {"epoch": 1, "loss": 0.5}),
    "model": (lambda w: {"model": w, "optimizer": _optimizer_state(), "epoch": 9},
              ("model",), "training-checkpoint", {"epoch": 9}),
    "deepspeed": (lambda w: {"module": w, "optimizer": None, "global_steps": 5, "ds_version": "0.14.0"},
                  ("module",), "training-checkpoint", {"global_steps": 5, "ds_version": "0.14.0"}),
    "state_dict/model": (lambda w: {"state_dict": {"model": w}, "epoch": 1},
                         ("state_dict", "model"), "training-checkpoint", {"epoch": 1}),
    "model/state_dict/module": (lambda w: {"model": {"state_dict": {"module": w}}},
                                ("model", "state_dict", "module"), "training-checkpoint", {}),
}


def test_every_prefix_chain_in_every_layout(tiny_state_dict):
    # In memory, past torch.load, so that all combinations stay cheap; files follow below.
    path = Path("in-memory.pt")
    for (layout, (build, location, fmt, extras)), prefix in itertools.product(_LAYOUTS.items(), _PREFIX_CHAINS):
        found, got_fmt, got_extras = foreign._unwrap(path, build(prefixed(tiny_state_dict, prefix)))
        got_location = found.location
        assert (got_location, got_fmt, got_extras) == (location, fmt, extras), (layout, prefix)
        loaded = foreign._finish(path, found)
        # The very tensors that went in (torch.equal on every one would take a minute here).
        assert sorted(loaded) == sorted(tiny_state_dict), (layout, prefix)
        for k, v in tiny_state_dict.items():
            assert loaded[k].data_ptr() == v.data_ptr() and loaded[k].shape == v.shape, (layout, prefix, k)


@pytest.mark.parametrize("layout, prefix", list(zip(_LAYOUTS, itertools.cycle(
    ["module.", "model.", "_orig_mod.module.", "module._orig_mod.", "clip.", "", "model._orig_mod."]))))
def test_every_layout_round_trips_through_a_file(tmp_path, tiny_state_dict, layout, prefix):
    build, location, fmt, extras = _LAYOUTS[layout]
    path = tmp_path / "checkpoint.pt"
    torch.save(build(prefixed(tiny_state_dict, prefix)), path)
    ckpt = read_foreign_state_dict(path)
    assert (ckpt.location, ckpt.format, ckpt.extras) == (location, fmt, extras)
    assert_same(ckpt.state_dict, tiny_state_dict)


def test_nesting_depth_is_bounded_and_cycles_end(tiny_state_dict):
    path = Path("in-memory.pt")
    deep = tiny_state_dict
    for _ in range(MAX_DEPTH):
        deep = {"state_dict": deep}
    assert foreign._unwrap(path, deep)[0].location == ("state_dict",) * MAX_DEPTH
    with pytest.raises(CheckpointError, match="no recognisable CLIP state dict"):
        foreign._unwrap(path, {"state_dict": deep})
    looped = {"epoch": 1, "model": tiny_state_dict}
    looped["state_dict"] = looped
    assert foreign._unwrap(path, looped)[0].location == ("model",)
    del looped["model"]
    with pytest.raises(CheckpointError, match="keys found: 'epoch', 'state_dict'"):
        foreign._unwrap(path, looped)


def test_layouts_and_prefixes_cover_every_holder_name():
    nesting = {k for _, loc, _, _ in _LAYOUTS.values() for k in loc}
    assert set(HOLDER_NAMES) <= nesting | {w.rstrip(".") for w in _WRAPPERS}


@pytest.mark.parametrize("main, ema", [("state_dict", "state_dict_ema"), ("model", "model_ema"),
                                       ("state_dict", "ema")])
def test_raw_weights_are_taken_over_ema_weights(tmp_path, tiny_state_dict, main, ema):
    shifted = {k: v + 1 if v.is_floating_point() else v for k, v in tiny_state_dict.items()}
    path = tmp_path / "with_ema.pt"
    torch.save({ema: {"module." + k: v for k, v in shifted.items()}, main: tiny_state_dict, "epoch": 3}, path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.location == (main,)
    assert_same(ckpt.state_dict, tiny_state_dict)
    # Control: the EMA copy alone is found too, so the choice above really was a preference.
    torch.save({ema: shifted}, path)
    assert_same(read_foreign_state_dict(path).state_dict, shifted)


def test_two_equally_plausible_state_dicts_are_refused(tmp_path, tiny_state_dict):
    path = tmp_path / "two.pt"
    torch.save({"model": tiny_state_dict, "state_dict": {k: v.clone() for k, v in tiny_state_dict.items()}}, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert message.startswith(f"{path}: holds several CLIP state dicts")
    assert "['model']" in message and "['state_dict']" in message
    # The same dict saved under both keys is one set of weights, not two.
    torch.save({"model": tiny_state_dict, "state_dict": tiny_state_dict}, path)
    assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)


def test_nested_dict_without_clip_keys_names_where_it_looked(tmp_path):
    path = tmp_path / "resnet.ckpt"
    torch.save({"epoch": 1, "state_dict": {"model.conv1.weight": torch.zeros(2), "model.fc.bias": torch.zeros(2)},
                "optimizer_states": []}, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert str(path) in message and "no recognisable CLIP state dict" in message
    assert "keys found (under ['state_dict']): 'model.conv1.weight', 'model.fc.bias'" in message


def test_liv_load_and_info_read_a_compiled_state_dict(tmp_path, tiny_state_dict, capsys):
    # The ckpt_compiled case: a clip-tiny state dict saved from a torch.compile'd model.
    path = tmp_path / "model.pt"
    torch.save(prefixed(tiny_state_dict, "_orig_mod."), path)
    model = liv.load(path)
    assert model.config.preset == "clip-tiny"
    assert_same(model.clip.state_dict(), tiny_state_dict)
    assert cli_main(["info", str(path)]) == 0
    assert "preset clip-tiny" in capsys.readouterr().out


def test_liv_load_keeps_training_metadata_without_masking_its_own(tmp_path, tiny_state_dict):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": prefixed(tiny_state_dict, "model."), "epoch": 4, "global_step": 100,
                "source_format": "forged"}, path)
    provenance = liv.load(path).config.provenance
    assert provenance["source_format"] == "training-checkpoint"
    assert provenance["epoch"] == 4 and provenance["global_step"] == 100

"""A liv model directory is checked before anything is built: every config.json field (type, range,
unknown, missing), the sizes it implies against the safetensors header, and the files themselves.
Each failure is one line naming the file and the field, from the API and from the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import liv
from liv.checkpoints import config_check, native
from liv.checkpoints.native import config_to_json
from liv.cli import main
from liv.model import ModelConfig
from liv.models.clip import CLIP, CLIPConfig
from liv.models.clip_shapes import clip_tensor_shapes
from liv.models.presets import PRESETS


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "tiny"
    liv.create("clip-tiny", seed=0).save(path)
    return path


@pytest.fixture
def model_dir(saved, tmp_path):
    """A copy of the saved clip-tiny directory to edit (the weights are a hard link: replace, never rewrite)."""
    d = tmp_path / "m"
    d.mkdir()
    os.link(saved / "model.safetensors", d / "model.safetensors")
    shutil.copy(saved / "config.json", d / "config.json")
    return d


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if a CLIP model is built or a tensor is read from the weights: an honest stand-in
    for "nothing of the claimed size was allocated" (and it keeps a wrong implementation from trying)."""
    def no_model(self, config):
        raise AssertionError(f"a model was built for {config}")

    from safetensors import safe_open as real_open

    class HeaderOnly:
        def __init__(self, *args, **kwargs):
            self._file = real_open(*args, **kwargs)

        def __enter__(self):
            self._file.__enter__()
            return self

        def __exit__(self, *exc):
            return self._file.__exit__(*exc)

        def keys(self):
            return self._file.keys()

        def get_slice(self, key):
            return self._file.get_slice(key)

        def get_tensor(self, key):
            raise AssertionError(f"tensor {key} was read before the checks passed")

    monkeypatch.setattr(CLIP, "__init__", no_model)
    monkeypatch.setattr(native, "safe_open", HeaderOnly, raising=False)


def edit(d: Path, field: str, value=None, *, remove: bool = False) -> None:
    """Set (or remove) a dotted field of d/config.json."""
    doc = json.loads((d / "config.json").read_text())
    *parents, last = field.split(".")
    section = doc
    for name in parents:
        section = section[name]
    if remove:
        del section[last]
    else:
        section[last] = value
    (d / "config.json").write_text(json.dumps(doc))


def refusal(d: Path) -> str:
    """The one-line message liv.load(d) refuses d with."""
    with pytest.raises(liv.CheckpointError) as info:
        liv.load(d)
    message = str(info.value)
    assert "\n" not in message
    return message


def write_weights(d: Path, state_dict: dict[str, torch.Tensor]) -> None:
    (d / "model.safetensors").unlink()  # a hard link to the shared copy: never write through it
    save_file(state_dict, str(d / "model.safetensors"), metadata={"format": "liv-model"})


# --- each field: type, range, unknown, missing ----------------------------------------------------

WRONG_TYPES = [  # field, value, message after "PATH/config.json: "
    ("clip.embed_dim", "128", 'clip.embed_dim must be an integer, got "128"'),
    ("clip.embed_dim", 128.0, "clip.embed_dim must be an integer, got 128.0"),
    ("clip.image_resolution", None, "clip.image_resolution must be an integer, got null"),
    ("clip.vision_layers", 4, "clip.vision_layers must be a list of 4 integers, got 4"),
    ("clip.vision_layers", [1, 1, 1], "clip.vision_layers must be a list of 4 integers, got [1, 1, 1]"),
    ("clip.vision_layers", [1, 1.5, 1, 1], "clip.vision_layers[1] must be an integer, got 1.5"),
    ("clip.vision_width", [16], "clip.vision_width must be an integer, got [16]"),
    ("clip.vision_heads", "8", 'clip.vision_heads must be an integer or null, got "8"'),
    ("clip.context_length", True, "clip.context_length must be an integer, got true"),
    ("clip.vocab_size", {"n": 1}, 'clip.vocab_size must be an integer, got {"n": 1}'),
    ("clip.transformer_width", "wide\nline", 'clip.transformer_width must be an integer, got "wide\\nline"'),
    ("clip.transformer_heads", 2.0, "clip.transformer_heads must be an integer, got 2.0"),
    ("clip.transformer_layers", False, "clip.transformer_layers must be an integer, got false"),
    ("preprocess.antialias", "yes", 'preprocess.antialias must be true or false, got "yes"'),
    ("preprocess.antialias", 1, "preprocess.antialias must be true or false, got 1"),
    ("preset", 3, "preset must be a string or null, got 3"),
    ("provenance", ["a"], 'provenance must be a JSON object, got ["a"]'),
    ("format_version", "1", 'format_version must be an integer, got "1"'),
    ("liv_version", 0.1, "liv_version must be a string, got 0.1"),
    ("clip", [], "clip must be a JSON object, got []"),
    ("preprocess", "on", 'preprocess must be a JSON object, got "on"'),
    ("clip.vocab_size", "x" * 500, f'clip.vocab_size must be an integer, got "{"x" * 56}...'),
]

OUT_OF_RANGE = [
    ("clip.embed_dim", 0, "clip.embed_dim must be at least 1, got 0"),
    ("clip.embed_dim", -128, "clip.embed_dim must be at least 1, got -128"),
    ("clip.image_resolution", 0, "clip.image_resolution must be at least 32, got 0"),
    ("clip.image_resolution", 100, "clip.image_resolution must be a multiple of 32, got 100"),
    ("clip.vision_layers", [1, 0, 1, 1], "clip.vision_layers must be 4 block counts of at least 1, got [1, 0, 1, 1]"),
    ("clip.vision_width", 1, "clip.vision_width must be at least 2, got 1"),
    ("clip.vision_heads", 0, "clip.vision_heads must be at least 1 or null, got 0"),
    ("clip.vision_heads", 7, "clip.vision_heads (7) must divide vision_width * 32 (512)"),
    ("clip.context_length", 1, "clip.context_length must be at least 2, got 1"),
    ("clip.vocab_size", 0, "clip.vocab_size must be at least 1, got 0"),
    ("clip.transformer_width", -1, "clip.transformer_width must be at least 1, got -1"),
    ("clip.transformer_heads", 0, "clip.transformer_heads must be at least 1, got 0"),
    ("clip.transformer_heads", 3, "clip.transformer_width (128) must be divisible by transformer_heads (3)"),
    ("clip.transformer_layers", 0, "clip.transformer_layers must be at least 1, got 0"),
    ("format_version", 0, "format_version must be at least 1, got 0"),
    ("format_version", 2, "format version 2 is newer than this liv (reads up to 1); upgrade liv"),
    ("format", "liv-model-x", 'not a liv model config (format: "liv-model-x", expected "liv-model")'),
]


def _clip_fields(cases):
    return {field.split(".")[1] for field, _, _ in cases if field.startswith("clip.")}


def test_every_architecture_field_has_a_wrong_type_and_a_range_case():
    names = {f.name for f in dataclasses.fields(CLIPConfig)}
    assert _clip_fields(WRONG_TYPES) == names
    assert _clip_fields(OUT_OF_RANGE) == names


@pytest.mark.parametrize("field, value, message", WRONG_TYPES + OUT_OF_RANGE)
def test_each_bad_field_is_named_with_the_file(model_dir, nothing_built, field, value, message):
    edit(model_dir, field, value)
    assert refusal(model_dir) == f"{model_dir / 'config.json'}: {message}"


@pytest.mark.parametrize("field, value, message", [
    ("clip.embed_dims", 128, "unknown field clip.embed_dims (did you mean clip.embed_dim?)"),
    ("preprocess.antialais", False, "unknown field preprocess.antialais (did you mean preprocess.antialias?)"),
    ("notes", "x", "unknown field notes (known: format, format_version, liv_version, preset, clip, preprocess, "
                   "provenance)"),
    ("a\nb", 1, 'unknown field "a\\nb" (known: format, format_version, liv_version, preset, clip, preprocess, '
                'provenance)'),
])
def test_unknown_fields_are_refused_by_name(model_dir, nothing_built, field, value, message):
    if "\n" in field:
        doc = json.loads((model_dir / "config.json").read_text())
        doc[field] = value
        (model_dir / "config.json").write_text(json.dumps(doc))
    else:
        edit(model_dir, field, value)
    assert refusal(model_dir) == f"{model_dir / 'config.json'}: {message}"


def test_provenance_is_free_form(model_dir):
    edit(model_dir, "provenance", {"note": "hand-edited", "nested": {"list": [1, None, 2.5]}})
    assert liv.load(model_dir).config.provenance["nested"] == {"list": [1, None, 2.5]}


def test_optional_fields_take_their_defaults(model_dir):
    for field in ("clip.vision_heads", "preprocess", "provenance", "preset", "format_version", "liv_version"):
        edit(model_dir, field, remove=True)
    config = liv.load(model_dir).config
    assert config.clip == PRESETS["clip-tiny"].config and config.clip.vision_heads is None
    assert config.antialias is True and config.provenance == {} and config.preset is None


@pytest.mark.parametrize("field, message", [
    ("clip", "missing field clip (the architecture)"),
    ("format", 'not a liv model config (format: missing, expected "liv-model")'),
    ("clip.embed_dim", "clip.embed_dim is 1024 (the default; the field is missing), but model.safetensors has "
                       "text_projection of shape [128, 128], where config.json implies [128, 1024]"),
])
def test_required_and_defaulted_fields_that_do_not_fit(model_dir, nothing_built, field, message):
    edit(model_dir, field, remove=True)
    assert refusal(model_dir) == f"{model_dir / 'config.json'}: {message}"


def test_the_known_top_level_fields_are_those_liv_writes():
    written = config_to_json(ModelConfig(clip=PRESETS["clip-tiny"].config))
    assert set(written) == set(config_check._TOP_LEVEL)


# --- sizes against the weights' header, before anything is allocated ------------------------------

@pytest.mark.parametrize("field, value, found", [
    ("clip.vocab_size", 10**10, "has token_embedding.weight of shape [49408, 128], where config.json implies "
                                "[10000000000, 128]"),
    ("clip.embed_dim", 2**30, "has text_projection of shape [128, 128], where config.json implies [128, 1073741824]"),
    ("clip.transformer_width", 2**20, "has ln_final.weight of shape [128], where config.json implies [1048576]"),
    ("clip.context_length", 10**9, "has positional_embedding of shape [77, 128], where config.json implies "
                                   "[1000000000, 128]"),
    ("clip.vision_width", 2**16, "has visual.bn3.weight of shape [16], where config.json implies [65536]"),
    ("clip.image_resolution", 2**20, "has visual.attnpool.positional_embedding of shape [5, 512], where "
                                     "config.json implies [1073741825, 512]"),
    ("clip.transformer_layers", 10**9, "has 2 blocks (transformer.resblocks.N)"),
    ("clip.vision_layers", [1, 1, 10**6, 1], "has [1, 1, 1, 1] blocks (visual.layerS.N)"),
])
def test_absurd_sizes_fail_on_the_header_before_anything_is_built(model_dir, nothing_built, field, value, found):
    if field == "clip.transformer_width":
        edit(model_dir, "clip.transformer_heads", 1)
    edit(model_dir, field, value)
    assert refusal(model_dir) == f"{model_dir / 'config.json'}: {field} is {value}, but model.safetensors {found}"


def test_a_value_with_hundreds_of_digits_gives_a_short_line(model_dir, nothing_built):
    edit(model_dir, "clip.vocab_size", 10**400)
    message = refusal(model_dir)
    assert message.startswith(f"{model_dir / 'config.json'}: clip.vocab_size is 1000") and len(message) < 400


def _state_dict(saved):
    return load_file(str(saved / "model.safetensors"))


@pytest.mark.parametrize("change, problem", [
    (lambda sd: sd.update({"visual.layer2.0.conv2.weight": torch.zeros(32, 32, 1, 1)}),
     "wrong shapes [visual.layer2.0.conv2.weight [32, 32, 1, 1] (expected [32, 32, 3, 3])]"),
    (lambda sd: sd.pop("visual.layer3.0.bn1.running_var"), "missing keys [visual.layer3.0.bn1.running_var]"),
    (lambda sd: sd.update({"visual.extra": torch.zeros(1)}), "unexpected keys [visual.extra]"),
    (lambda sd: sd.update({k.replace("resblocks.1.", "resblocks.7."): sd.pop(k) for k in list(sd)
                           if k.startswith("transformer.resblocks.1.")}),
     "missing keys [transformer.resblocks.1.attn.in_proj_bias, transformer.resblocks.1.attn.in_proj_weight, "
     "transformer.resblocks.1.attn.out_proj.bias, transformer.resblocks.1.attn.out_proj.weight, "
     "transformer.resblocks.1.ln_1.bias, ... (12 in all)]; unexpected keys [transformer.resblocks.7.attn.in_proj_bias"),
])
def test_tensors_that_disagree_with_the_config_are_named(saved, model_dir, nothing_built, change, problem):
    state_dict = _state_dict(saved)
    change(state_dict)
    write_weights(model_dir, state_dict)
    assert refusal(model_dir).startswith(f"{model_dir / 'model.safetensors'}: tensors do not fit the architecture "
                                         f"in config.json: {problem}")


def test_an_empty_tensor_claiming_a_huge_width_is_refused(saved, model_dir, nothing_built):
    state_dict = _state_dict(saved)
    state_dict["token_embedding.weight"] = torch.empty(0, 10**12)  # no bytes in the file, 10**12 in the header
    write_weights(model_dir, state_dict)
    assert refusal(model_dir) == (f"{model_dir / 'config.json'}: clip.vocab_size is 49408, but model.safetensors has "
                                  "token_embedding.weight of shape [0, 1000000000000], where config.json implies "
                                  "[49408, 128]")


def _forge_header(d: Path, key: str, shape: list[int], end_offset: int | None = None) -> None:
    """Rewrite one tensor's shape (and optionally its end offset) in d/model.safetensors's header."""
    raw = (d / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header[key]["shape"] = shape
    if end_offset is not None:
        header[key]["data_offsets"][1] = end_offset
    new = json.dumps(header).encode()
    (d / "model.safetensors").unlink()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])


@pytest.mark.parametrize("end_offset", [None, 4 * 10**12])
def test_a_header_claiming_absurd_shapes_is_one_line(model_dir, nothing_built, end_offset):
    _forge_header(model_dir, "token_embedding.weight", [10**6, 10**6], end_offset)
    message = refusal(model_dir)
    assert message.startswith(f"{model_dir / 'model.safetensors'}: corrupt or truncated safetensors file (")


# --- the files themselves --------------------------------------------------------------------------

def test_config_file_problems(model_dir, nothing_built):
    cfg = model_dir / "config.json"
    good = cfg.read_bytes()
    latin1 = good.replace(b'"clip-tiny"', b'"clip-t\xefny"')
    cfg.write_bytes(latin1)
    offset = latin1.index(b"\xef")
    assert refusal(model_dir) == f"{cfg}: config.json is not UTF-8 text (byte 0xef at offset {offset})"
    cfg.write_text("{not json")
    assert refusal(model_dir).startswith(f"{cfg}: config.json is not valid JSON (Expecting property name")
    cfg.write_text("[" * 100_000)
    assert refusal(model_dir) == f"{cfg}: config.json is not valid JSON (nested too deeply)"
    cfg.write_text("[1, 2]")
    assert refusal(model_dir) == f"{cfg}: not a liv model config (the document is [1, 2], not a JSON object)"
    cfg.write_bytes(good + b" " * (1 << 20))
    assert refusal(model_dir) == (f"{cfg}: config.json is over 1 MiB; a liv model config is a few KB: is this the "
                                  "right file?")
    (model_dir / "model.safetensors").unlink()
    cfg.write_bytes(good)
    weights = model_dir / "model.safetensors"
    assert refusal(model_dir) == f"{weights}: missing model.safetensors next to config.json"


def test_a_byte_order_mark_is_accepted(model_dir):
    cfg = model_dir / "config.json"
    cfg.write_bytes(b"\xef\xbb\xbf" + cfg.read_bytes())
    assert liv.load(model_dir).config.preset == "clip-tiny"


@pytest.mark.parametrize("config", [
    *(p.config for p in PRESETS.values()),
    CLIPConfig(embed_dim=24, image_resolution=96, vision_layers=(3, 1, 2, 4), vision_width=6, vision_heads=3,
               context_length=5, vocab_size=11, transformer_width=12, transformer_heads=3, transformer_layers=3),
])
def test_computed_shapes_are_the_models(config):
    assert clip_tensor_shapes(config) == {k: tuple(v.shape) for k, v in CLIP(config).state_dict().items()}


# --- the command line --------------------------------------------------------------------------------

@pytest.fixture
def frames_dir(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(d / f"{i:03d}.png")
    return d


@pytest.mark.parametrize("command", ["info", "convert", "reward", "train"])
@pytest.mark.parametrize("field, value, message", [
    ("clip.embed_dim", "128", 'clip.embed_dim must be an integer, got "128"'),
    ("clip.vocab_size", 10**10, "clip.vocab_size is 10000000000, but model.safetensors has token_embedding.weight"),
])
def test_cli_prints_one_line_and_fails(model_dir, frames_dir, tmp_path, capsys, nothing_built, command, field,
                                       value, message):
    edit(model_dir, field, value)
    argv = {"info": ["info", model_dir],
            "convert": ["convert", model_dir, tmp_path / "converted"],
            "reward": ["reward", frames_dir, "--model", model_dir, "--goal", "open", "--out", tmp_path / "r"],
            "train": ["train", "--init", model_dir, "--data", frames_dir, "--out", tmp_path / "run", "--steps", "1"],
            }[command]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"liv {command}: error: {model_dir / 'config.json'}: {message}")

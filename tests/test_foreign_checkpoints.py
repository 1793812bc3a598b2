"""Reading foreign CLIP/LIV checkpoints: the reference's files, plain state dicts, hostile files."""

from __future__ import annotations

import builtins
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from liv.checkpoints import foreign
from liv.checkpoints.foreign import CheckpointError, ForeignCheckpoint, read_foreign_state_dict

RELEASE = "checkpoint_liv.pt"
SNAPSHOT = "checkpoint_snapshot.pt"
TORCHSCRIPT = "clip_openai.jit.pt"

# OpenAI's build_model() runs convert_weights(), which rounds exactly these through fp16.
_FP16_ROUNDED_SUFFIXES = (
    "conv1.weight", "conv2.weight", "conv3.weight", "downsample.0.weight",
    "proj.weight", "proj.bias", "c_fc.weight", "c_fc.bias",
    "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias",
)
_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _rounded_by_reference(key: str) -> bool:
    return key == "text_projection" or key.endswith(_FP16_ROUNDED_SUFFIXES)


@pytest.fixture(scope="module")
def release(reference_fixtures: Path) -> ForeignCheckpoint:
    return read_foreign_state_dict(reference_fixtures / RELEASE)


@pytest.fixture(scope="module")
def snapshot(reference_fixtures: Path) -> ForeignCheckpoint:
    return read_foreign_state_dict(reference_fixtures / SNAPSHOT)


@pytest.fixture(scope="module")
def torchscript(reference_fixtures: Path) -> ForeignCheckpoint:
    return read_foreign_state_dict(reference_fixtures / TORCHSCRIPT)


@pytest.fixture()
def safe_loads_only(monkeypatch):
    """Fail the test if the reader calls torch.jit.load or torch.load without weights_only."""
    real_load = torch.load

    def checked_load(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "torch.load called without weights_only=True"
        return real_load(*args, **kwargs)

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load must never be called")

    monkeypatch.setattr(torch, "load", checked_load)
    monkeypatch.setattr(torch.jit, "load", no_jit)


# --- the reference's files ----------------------------------------------------------------------


def test_release_layout(release):
    assert release.format == "liv-release"
    assert len(release.state_dict) == 153
    assert release.extras == {}
    for key in ("visual.conv1.weight", "transformer.resblocks.0.attn.in_proj_weight",
                "token_embedding.weight", "positional_embedding", "text_projection", "logit_scale"):
        assert key in release.state_dict
    assert not any(k.startswith(("module.", "model.")) for k in release.state_dict)
    for v in release.state_dict.values():
        assert v.device.type == "cpu" and v.dtype in (torch.float32, torch.int64)


def test_snapshot_layout(release, snapshot):
    assert snapshot.format == "liv-snapshot"
    assert snapshot.extras == {"global_step": 1}
    assert list(snapshot.state_dict) == list(release.state_dict)
    diffs = {k: (v.double() - release.state_dict[k].double()).abs().max().item()
             for k, v in snapshot.state_dict.items()}
    assert max(diffs.values()) > 0, "one optimizer step should change the weights"
    # Adam's first step moves each parameter by about lr = 1e-5. BatchNorm's running
    # statistics were updated in train mode, so they move far more and are left out.
    params = {k: d for k, d in diffs.items() if not k.endswith(_BN_BUFFERS)}
    assert 0 < max(params.values()) < 1e-3


def test_torchscript_matches_release_after_fp16_rounding(release, torchscript, safe_loads_only):
    assert torchscript.format == "openai-torchscript"
    assert torchscript.extras == {}
    assert list(torchscript.state_dict) == list(release.state_dict)
    rounded = 0
    for key, ref in release.state_dict.items():
        ts = torchscript.state_dict[key]
        assert ts.shape == ref.shape and ts.dtype == ref.dtype, key
        if _rounded_by_reference(key):
            rounded += 1
            # Measured: bit-identical after rounding; before it they differ by up to 2.3e-4
            # (relative error at most 2**-11 for normal fp16 values).
            assert torch.equal(ts.half().float(), ref), key
        else:
            assert torch.equal(ts, ref), key
    assert rounded == 44
    # The archive really holds the un-rounded values, so the rounding rule above is not vacuous.
    key = "text_projection"
    assert not torch.equal(torchscript.state_dict[key], release.state_dict[key])


def test_torchscript_read_does_not_call_torch_load_or_jit(reference_fixtures, safe_loads_only):
    ckpt = read_foreign_state_dict(reference_fixtures / TORCHSCRIPT)
    assert "transformer.resblocks.1.attn.in_proj_weight" in ckpt.state_dict
    assert not any("attn_mask" in k for k in ckpt.state_dict)


def test_torchscript_attn_mask_attribute_is_not_a_state_dict_entry(
    tmp_path, reference_fixtures, torchscript, monkeypatch
):
    # OpenAI's archives keep each text block's causal mask as a plain tensor attribute. This
    # fixture has none, so give the first text block one: in its attribute dict, before the
    # other entries, "attn_mask" -> memo 9 (the already-built positional_embedding tensor).
    with zipfile.ZipFile(reference_fixtures / TORCHSCRIPT) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    block = data.index(b"c__torch__.clip.model\nResidualAttentionBlock\n")
    at = data.index(b")\x81}(", block) + 4
    entry = b"X" + (9).to_bytes(4, "little") + b"attn_mask" + b"h\x09"
    path = tmp_path / "with_mask.jit.pt"
    _torchscript_like(reference_fixtures, path, data[:at] + entry + data[at:])

    ckpt = read_foreign_state_dict(path)
    assert list(ckpt.state_dict) == list(torchscript.state_dict)
    # Control: the patch did add the attribute, and only the skip list keeps it out.
    monkeypatch.setattr(foreign, "_NON_STATE_ATTRIBUTES", frozenset())
    assert "transformer.resblocks.0.attn_mask" in read_foreign_state_dict(path).state_dict


# --- plain state dicts --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "module.", "model.", "module.model."])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_plain_state_dict_round_trips(tmp_path, release, prefix, legacy, safe_loads_only):
    path = tmp_path / "plain.pt"
    torch.save({prefix + k: v for k, v in release.state_dict.items()}, path,
               _use_new_zipfile_serialization=not legacy)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.format == "clip-state-dict"
    assert ckpt.extras == {}
    assert list(ckpt.state_dict) == list(release.state_dict)
    for k, v in release.state_dict.items():
        assert ckpt.state_dict[k].dtype == v.dtype and torch.equal(ckpt.state_dict[k], v), k


def test_keys_outside_the_prefix_are_ignored_unless_they_are_clip_keys(tmp_path, release):
    sd = {"module." + k: v for k, v in release.state_dict.items()}
    sd["extra_buffer"] = torch.zeros(1)
    path = tmp_path / "mixed.pt"
    torch.save(sd, path)
    ckpt = read_foreign_state_dict(path)
    assert list(ckpt.state_dict) == list(release.state_dict)
    for k, v in release.state_dict.items():
        assert torch.equal(ckpt.state_dict[k], v), k
    # A CLIP key outside the prefix: which logit_scale is the model's is unknowable.
    sd["logit_scale"] = torch.zeros(())
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"under keys 'module\.\*' and CLIP keys outside them: 'logit_scale'"):
        read_foreign_state_dict(path)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_widened_to_float32(tmp_path, release, dtype):
    sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in release.state_dict.items()}
    path = tmp_path / "half.pt"
    torch.save(sd, path)
    ckpt = read_foreign_state_dict(path)
    for k, v in sd.items():
        got = ckpt.state_dict[k]
        assert got.dtype == (torch.float32 if v.is_floating_point() else v.dtype), k
        assert torch.equal(got, v.float() if v.is_floating_point() else v), k


@pytest.mark.parametrize("name", ["model.safetensors", "weights.bin"])
def test_safetensors_round_trips(tmp_path, release, name):
    # The second name checks that safetensors files are recognised by content, not suffix.
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in release.state_dict.items()}, str(path))
    ckpt = read_foreign_state_dict(path)
    assert ckpt.format == "safetensors-state-dict"
    assert set(ckpt.state_dict) == set(release.state_dict)
    for k, v in release.state_dict.items():
        assert ckpt.state_dict[k].dtype == v.dtype and torch.equal(ckpt.state_dict[k], v), k


def test_safetensors_with_prefix(tmp_path, release):
    path = tmp_path / "prefixed.safetensors"
    sd = {"module.model." + k: v.contiguous() for k, v in release.state_dict.items()}
    save_file(sd, str(path))
    assert set(read_foreign_state_dict(path).state_dict) == set(release.state_dict)


# --- hostile files: nothing may execute ---------------------------------------------------------


class _ExecPayload:
    """Unpickling this would run ``exec`` and create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"with open({str(self.marker)!r}, 'w') as f: f.write('x')",))


class _SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _payload_works(tmp_path: Path) -> None:
    # Control: the payload does create its marker when unpickled unsafely, so a missing
    # marker after read_foreign_state_dict really means nothing ran.
    control = tmp_path / "control_marker"
    pickle.loads(pickle.dumps(_ExecPayload(control), protocol=2))
    assert control.exists()


def _torchscript_like(reference_fixtures: Path, path: Path, data_pkl: bytes) -> None:
    with zipfile.ZipFile(reference_fixtures / TORCHSCRIPT) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = data_pkl if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, body)


def _build(kind: str, path: Path, marker: Path, reference_fixtures: Path) -> None:
    payload = _ExecPayload(marker)
    if kind == "torch-zip":
        torch.save({"liv": {"model.visual.conv1.weight": payload}}, path)
    elif kind == "torch-zip-os-system":
        torch.save(_SystemPayload(marker), path)
    elif kind == "torch-legacy":
        torch.save({"liv": payload}, path, _use_new_zipfile_serialization=False)
    elif kind == "plain-pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    elif kind == "torchscript":
        _torchscript_like(reference_fixtures, path, pickle.dumps(payload, protocol=2))
    elif kind == "torchscript-os-system":
        data = pickle.dumps(_SystemPayload(marker), protocol=2)
        _torchscript_like(reference_fixtures, path, data)
    elif kind == "torchscript-nested":
        # The hostile call hides inside an otherwise well-formed module record, the way the
        # archive pickles modules: GLOBAL __torch__..., EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, ..., BUILD.
        inner = pickle.dumps(payload, protocol=2)[2:-1]  # without PROTO and STOP
        head = b"\x80\x02c__torch__.clip.model\nCLIP\n)\x81}X\x06\x00\x00\x00weight"
        data = head + inner + b"sb."
        _torchscript_like(reference_fixtures, path, data)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "torch-zip", "torch-zip-os-system", "torch-legacy", "plain-pickle",
    "torchscript", "torchscript-os-system", "torchscript-nested",
])
def test_malicious_pickle_is_refused_without_running(
    tmp_path, reference_fixtures, kind, safe_loads_only
):
    _payload_works(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil_{kind}.pt"
    _build(kind, path, marker, reference_fixtures)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert str(path) in message
    assert "could execute code" in message
    expected = "system" if "os-system" in kind else "exec"
    assert expected in message
    assert not marker.exists(), "the payload ran"


# --- damaged or unrelated files -----------------------------------------------------------------


@pytest.mark.parametrize("kind, reason", [
    ("missing", "does not exist"),
    ("empty", "empty"),
    ("text", "not a checkpoint"),
    ("png", "not a checkpoint"),
    ("truncated-release", "truncated or corrupt zip"),
    ("truncated-torchscript", "truncated or corrupt zip"),
    ("truncated-safetensors", "safetensors"),
    ("directory", "not a regular file"),
])
def test_unreadable_files_name_path_and_reason(tmp_path, reference_fixtures, kind, reason):
    path = tmp_path / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, this is not a model\n")
    elif kind == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    elif kind.startswith("truncated-") and kind != "truncated-safetensors":
        src = reference_fixtures / (RELEASE if kind == "truncated-release" else TORCHSCRIPT)
        data = src.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated-safetensors":
        full = tmp_path / "full.safetensors"
        save_file({"a": torch.zeros(1000)}, str(full))
        path = tmp_path / "truncated.safetensors"
        path.write_bytes(full.read_bytes()[:-100])
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    assert str(path) in str(err.value)
    assert reason in str(err.value)
    assert err.value.path == str(path)


def test_damaged_torchscript_member_is_reported(tmp_path, reference_fixtures):
    path = tmp_path / "damaged.jit.pt"
    _torchscript_like(reference_fixtures, path, b"\x80\x02(this is not a pickle")
    with pytest.raises(CheckpointError, match="corrupt TorchScript archive") as err:
        read_foreign_state_dict(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("obj", [
    {"foo": torch.zeros(2), "bar": torch.ones(1)},
    {"liv": {"foo": torch.zeros(2)}, "global_step": 3},
])
def test_dict_without_clip_keys_lists_found_keys(tmp_path, obj):
    path = tmp_path / "not_clip.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert str(path) in message and "no recognisable CLIP" in message and "'foo'" in message


def test_non_dict_checkpoint(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a dict of tensors"):
        read_foreign_state_dict(path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)

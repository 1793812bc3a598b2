"""torch.save files read with the weights-only unpickler: the plain Python/numpy objects training
checkpoints keep next to the weights, refusals and their extraction command, hostile files, and
torch's process-wide allow-list under concurrent loads."""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch

import liv
from liv.checkpoints import torch_pickle
from liv.checkpoints.foreign import CheckpointError, read_foreign_state_dict
from liv.checkpoints.torch_pickle import DataStandIn, load_weights_only
from liv.cli import main as cli_main
from checkpoint_states import assert_same, prefixed


def _no_stand_ins_left() -> bool:
    return not any(isinstance(g, type) and issubclass(g, DataStandIn)
                   for g in torch.serialization.get_safe_globals())


# --- plain Python and numpy objects next to the weights -------------------------------------------


def _with_objects(tiny_state_dict: dict) -> dict:
    args = argparse.Namespace(lr=1e-5, logs=Path("/runs/a"), data=PurePosixPath("/data"), name="run-1")
    return {"epoch": 2, "state_dict": prefixed(tiny_state_dict, "module."), "args": args,
            "metrics": {"val_loss": np.float64(0.25), "step": np.int64(7), "ok": np.bool_(True),
                        "curve": np.arange(4, dtype=np.float32)}}


def test_namespace_numpy_and_paths_get_inert_stand_ins(tmp_path, tiny_state_dict):
    path = tmp_path / "open_clip_args.pt"
    torch.save(_with_objects(tiny_state_dict), path)
    ckpt = read_foreign_state_dict(path)
    assert ckpt.extras == {"epoch": 2}
    assert_same(ckpt.state_dict, tiny_state_dict)
    obj = load_weights_only(path)
    assert _no_stand_ins_left()
    stood_in = [obj["args"], obj["args"].state["logs"], *obj["metrics"].values()]
    assert all(isinstance(o, DataStandIn) for o in stood_in), stood_in
    assert obj["args"].stands_for == "argparse.Namespace"
    assert obj["args"].state["name"] == "run-1"  # the state is kept, as data, uninterpreted


@pytest.mark.parametrize("value, refused", [
    (argparse.Namespace(lr=1e-5), "argparse.Namespace"),
    (np.float64(0.25), "{0.__module__}.{0.__name__}".format(np.float64(0).__reduce__()[0])),
])
def test_without_stand_ins_the_refusal_names_file_global_and_fix(tmp_path, tiny_state_dict, monkeypatch, value, refused):
    # Control for the stand-ins, and the message a torch without safe_globals gives.
    monkeypatch.setattr(torch_pickle, "_STAND_INS", [])
    path = tmp_path / "needs_stand_ins.ckpt"
    torch.save({"state_dict": tiny_state_dict, "extra": value}, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: refused: unpickling it would import or call '{refused}'")
    assert "If you trust this file" in message and "weights_only=False" in message
    assert str(path.with_name("needs_stand_ins.weights.pt")) in message


def test_unknown_class_is_refused_with_a_working_extraction_command(tmp_path, tiny_state_dict, monkeypatch, capsys):
    module = "liv_wrappers_test_config"
    (tmp_path / f"{module}.py").write_text("class RunConfig:\n    def __init__(self):\n        self.lr = 1e-5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = importlib.import_module(module).RunConfig()
    path = tmp_path / "it's a \"run\".ckpt"  # the command must survive quotes in the name
    torch.save({"state_dict": prefixed(tiny_state_dict, "model."), "config": config, "epoch": 1}, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert message.startswith(f"{path}: refused: unpickling it would import or call '{module}.RunConfig'")
    assert _no_stand_ins_left()

    assert cli_main(["info", str(path)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and f"'{module}.RunConfig'" in err_lines[0] and "Traceback" not in err_lines[0]

    # The suggested command, run as the user would (with this interpreter), gives a loadable file.
    command = message.split("load the result instead: ", 1)[1]
    assert command.startswith("python -c ")
    command = shlex.quote(sys.executable) + command[len("python"):]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    subprocess.run(command, shell=True, check=True, env=env, timeout=300)
    extracted = read_foreign_state_dict(path.with_name(path.stem + ".weights.pt"))
    assert extracted.location == ("state_dict",) and extracted.extras == {}
    assert_same(extracted.state_dict, tiny_state_dict)


class _UserAllowed:
    """A class some other code has put on torch's allow-list; liv's loads must leave it there."""


def test_concurrent_loads_keep_the_allow_list_intact(tmp_path, tiny_state_dict, monkeypatch):
    module = "liv_wrappers_test_threads"
    (tmp_path / f"{module}.py").write_text("class Unknown:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    good, refused = tmp_path / "namespace.ckpt", tmp_path / "unknown.ckpt"
    torch.save(_with_objects(tiny_state_dict), good)
    torch.save({"state_dict": tiny_state_dict, "x": importlib.import_module(module).Unknown()}, refused)
    real_load = torch.load

    def slow_load(*args, **kwargs):
        time.sleep(0.002)  # widens the window in which another thread's load overlaps this one
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", slow_load)
    initial = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([_UserAllowed])
    try:
        before = set(map(id, torch.serialization.get_safe_globals()))
        start = threading.Barrier(8)

        def load(i: int):
            start.wait()
            path = good if i % 2 else refused
            results = []
            for _ in range(6):
                try:
                    results.append(read_foreign_state_dict(path).state_dict)
                except CheckpointError as e:
                    results.append(e)
            return path, results

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(load, range(8)))
        assert set(map(id, torch.serialization.get_safe_globals())) == before
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(initial)
    assert _no_stand_ins_left()
    for path, results in outcomes:
        for result in results:
            if path == good:
                assert isinstance(result, dict), result
                assert_same(result, tiny_state_dict)
            else:
                assert isinstance(result, CheckpointError), result
                assert str(result).startswith(f"{refused}: refused: unpickling it would import or call "
                                              f"'{module}.Unknown'"), result


class _SnapshotSafeGlobals:
    """torch 2.5's ``safe_globals``: restores on exit the list as it was on entry."""

    def __init__(self, safe_globals):
        self.safe_globals = safe_globals

    def __enter__(self):
        self.initial = torch.serialization.get_safe_globals()
        torch.serialization.add_safe_globals(self.safe_globals)

    def __exit__(self, *exc):
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(self.initial)


def test_a_stand_in_left_on_the_allow_list_is_removed_by_the_next_load(tmp_path, tiny_state_dict, monkeypatch):
    # What two overlapping snapshot-restoring contexts (in code that bypasses liv's lock) leave behind.
    monkeypatch.setattr(torch.serialization, "safe_globals", _SnapshotSafeGlobals)
    path = tmp_path / "namespace.ckpt"
    torch.save(_with_objects(tiny_state_dict), path)
    initial = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals([_UserAllowed, torch_pickle._STAND_INS[0]])
    try:
        assert_same(read_foreign_state_dict(path).state_dict, tiny_state_dict)
        assert _no_stand_ins_left()
        assert _UserAllowed in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(initial)


@pytest.mark.parametrize("nested", [False, True], ids=["module", "module-in-dict"])
def test_extraction_command_turns_a_whole_pickled_module_into_its_state_dict(tmp_path, tiny_state_dict, monkeypatch, nested):
    # torch.save(model) instead of torch.save(model.state_dict()): the command must call state_dict().
    module = "liv_wrappers_test_policy"
    (tmp_path / f"{module}.py").write_text(
        "import torch\n\nclass Policy(torch.nn.Module):\n    def __init__(self, clip):\n"
        "        super().__init__()\n        self.clip = clip\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    policy = importlib.import_module(module).Policy(liv.create("clip-tiny", seed=0).clip)
    path = tmp_path / "policy.pt"
    torch.save({"model": policy, "epoch": 3} if nested else policy, path)
    with pytest.raises(CheckpointError) as err:
        liv.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: refused: unpickling it would import or call ")
    assert f"'{module}.Policy'" in message
    command = message.split("load the result instead: ", 1)[1]
    command = shlex.quote(sys.executable) + command[len("python"):]
    # The trusted session can import the classes the pickle names: the test module's and liv's.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(liv.__file__).parents[1])])}
    subprocess.run(command, shell=True, check=True, env=env, timeout=300)
    model = liv.load(path.with_name("policy.weights.pt"))
    assert model.config.preset == "clip-tiny"
    assert_same(model.clip.state_dict(), tiny_state_dict)


# --- hostile files: stand-ins open no door ---------------------------------------------------------


class _SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("where", ["next-to-weights", "inside-namespace", "inside-state-dict"])
def test_os_system_is_refused_without_running(tmp_path, tiny_state_dict, where):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_SystemPayload(control), protocol=2))
    assert control.exists(), "the payload should work when unpickled unsafely"
    marker = tmp_path / "pwned"
    payload = _SystemPayload(marker)
    obj = {"epoch": 1, "state_dict": dict(tiny_state_dict)}
    if where == "next-to-weights":
        obj["callback"] = payload
    elif where == "inside-namespace":
        obj["args"] = argparse.Namespace(cmd=payload)
    else:
        obj["state_dict"]["visual.conv1.weight"] = payload
    path = tmp_path / "evil.ckpt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError) as err:
        read_foreign_state_dict(path)
    message = str(err.value)
    assert message.startswith(f"{path}: refused: unpickling it would call '{os.system.__module__}.system'")
    assert "do not load this file" in message and "weights_only=False" not in message
    assert not marker.exists(), "the payload ran"
    assert _no_stand_ins_left()

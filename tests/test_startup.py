"""`import liv` and `liv ... --help` stay fast: they import no torch, numpy or the readers' libraries.

Checked by what a fresh interpreter imported (``python -X importtime`` lists every module), not by
timing, which a busy machine would break. bench/README.md has the measured start-up times.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import liv
import liv.cli

HEAVY = ("torch", "numpy", "PIL", "av", "pyarrow", "matplotlib", "safetensors", "tensorboard", "tqdm", "ftfy",
         "regex", "mujoco", "metaworld", "gymnasium", "pandas", "scipy")
"""Packages that take from tens of milliseconds (numpy) to seconds (torch) to import."""


def imported(*args: str) -> set[str]:
    """Every module ``python -X importtime ARGS`` imported (the command must succeed)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def heavy(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_import_liv_imports_no_torch():
    modules = imported("-c", "import liv; liv.__version__")
    assert "liv" in modules and "liv._lazy" in modules  # the listing does see liv's own imports
    assert heavy(modules) == []
    assert not any(m.startswith(("liv.data", "liv.model", "liv.envs", "liv.eval", "liv.sim")) for m in modules)


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]], ids=" ".join)
def test_liv_help_imports_no_torch(argv):
    modules = imported("-m", "liv", *argv)
    assert "liv.cli" in modules
    assert heavy(modules) == []


def test_every_command_help_imports_no_heavy_package():
    """Each command's --help in one interpreter, in turn: the first that pulls in a heavy package is named."""
    script = """if True:
        import contextlib, io, json, sys
        from liv.cli import COMMANDS, main
        heavy = set(json.loads(sys.argv[1]))
        result, loaded = {}, set()
        for name in COMMANDS:
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
                main([*name.split(), "--help"])
            now = heavy & {m.split(".")[0] for m in sys.modules}
            result[name] = [out.getvalue().startswith("usage: liv " + name), sorted(now - loaded)]
            loaded |= now
        print(json.dumps(result))
    """
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(HEAVY)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert list(result) == list(liv.cli.COMMANDS)
    assert {name: printed for name, (printed, _) in result.items() if not printed} == {}  # each printed its help
    assert {name: loaded for name, (_, loaded) in result.items() if loaded} == {}


def test_a_named_command_gets_its_options_alone(capsys):
    # `liv train --help` builds train's options only: the other commands are listed without importing them
    parser = liv.cli.build_parser(["train", "--help"])
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    assert "--max-bad-samples" in capsys.readouterr().out
    assert liv.cli._named_command(["--debug", "data", "check", "d"]) == "data check"
    assert liv.cli._named_command(["info", "--json", "m"]) == "info"
    assert liv.cli._named_command(["data", "--help"]) is None  # the group: its commands are listed
    assert liv.cli._named_command(["infox"]) is None


def test_lazy_attributes_behave_like_imports():
    import liv.data
    import liv.data.episodes
    import liv.models.tokenizer

    assert liv.data.DataError is liv.data.episodes.DataError
    assert liv.TextTruncatedWarning is liv.models.tokenizer.TextTruncatedWarning
    assert {"load", "create", "data", "envs", "checkpoints", "__version__"} <= set(dir(liv))
    assert {"open_dataset", "images", "check"} <= set(dir(liv.data))
    namespace: dict = {}
    exec("from liv import *", namespace)
    assert set(liv.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="module 'liv' has no attribute 'nothing'"):
        liv.nothing  # noqa: B018
    with pytest.raises(AttributeError):
        liv.__main__  # noqa: B018 (private: never imported by a lookup, which would run the CLI)

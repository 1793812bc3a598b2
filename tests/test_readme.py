"""README.md's Python runs: each ```python block statement by statement, each `liv...(...)` call of the
prose, and each `liv.X.Y` name it mentions resolves after a bare `import liv`.

The README is parsed, not copied here, so a line added to it is run too. Inputs are real and small: the
block's "model.pt" is a reference-format LIV release (also served as ``liv-resnet50`` by a local
stand-in for the Hugging Face Hub) (``{'liv': {'module.model.<CLIP key>': tensor}}``)
of a seeded clip-tiny, written to the folder the statements run in; ``frames = ...`` gets frames of a
moving square; a prose call's free names get real objects (``path``: a frame-folder dataset, ``env``:
CartPole rendering RGB arrays). A statement's trailing shape comment (``# (N, 2)``) is checked against
the shape of what it assigned.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import re
import subprocess
import sys
import tokenize
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import liv

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
LIV_NAME = re.compile(r"(?<![\w./-])liv(?:\.[A-Za-z_]\w*)+")
SHAPE_COMMENT = re.compile(r"#\s*\(([^()]*)\)")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(README line of the block's first code line, code) of each ```python block."""
    return [(text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == "python"]


def prose_spans(text: str) -> list[str]:
    """The inline code spans outside fenced blocks."""
    return re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


def prose_calls(text: str) -> list[str]:
    """Inline code spans that are a Python call expression mentioning ``liv.``."""
    calls = []
    for span in prose_spans(text):
        try:
            tree = ast.parse(span, mode="eval")
        except SyntaxError:
            continue
        if isinstance(tree.body, ast.Call) and LIV_NAME.search(span):
            calls.append(span)
    return calls


def make_frames(n: int = 6, height: int = 48, width: int = 80) -> np.ndarray:
    """A red square sliding right over a grey floor: (n, height, width, 3) uint8, not square (cropped)."""
    frames = np.full((n, height, width, 3), 90, np.uint8)
    frames[:, height * 2 // 3:] = 140
    for t in range(n):
        x = 4 + t * (width - 20) // max(1, n - 1)
        frames[t, 12:28, x:x + 14] = (220, 30, 30)
    return frames


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder holding the README's "model.pt" (reference LIV release format) and a frame-folder dataset."""
    root = tmp_path_factory.mktemp("readme")
    clip = liv.create("clip-tiny", seed=0).clip
    torch.save({"liv": {f"module.model.{k}": v for k, v in clip.state_dict().items()}}, root / "model.pt")
    frames = make_frames()
    rows = ["directory,num_frames,text"]
    for k, (text, episode) in enumerate([("push the block right", frames), ("push the block left", frames[::-1])]):
        (root / "data" / f"ep{k}").mkdir(parents=True)
        for i, frame in enumerate(episode):
            Image.fromarray(frame).save(root / "data" / f"ep{k}" / f"{i}.png")
        rows.append(f"ep{k},{len(episode)},{text}")
    (root / "data" / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def _cartpole() -> Any:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("pygame")  # CartPole renders with it (the test extra gymnasium[classic-control])
    return gym.make("CartPole-v1", render_mode="rgb_array")


def stand_ins(workspace: Path) -> dict[str, Callable[[], Any]]:
    """What a free name of the README's code stands for (made when a line needs it)."""
    return {"frames": make_frames, "path": lambda: workspace / "data", "env": _cartpole, "warnings": lambda: warnings}


def shape_symbols(namespace: dict[str, Any]) -> dict[str, int]:
    """Values of the letters in shape comments: N, H, W of ``frames``, D of ``model``."""
    symbols = {}
    if "frames" in namespace:
        symbols["N"], symbols["H"], symbols["W"] = namespace["frames"].shape[:3]
    if "model" in namespace:
        symbols["D"] = namespace["model"].embed_dim
    return symbols


def shape_problem(stmt: ast.stmt, comment: str | None, namespace: dict[str, Any]) -> str | None:
    """What is wrong with a ``NAME = ...  # (dims)`` statement's shape comment, or None."""
    match = SHAPE_COMMENT.match(comment or "")
    if not match or not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                         and isinstance(stmt.targets[0], ast.Name)):
        return None
    value = namespace.get(stmt.targets[0].id)
    if not hasattr(value, "shape"):
        return f"the comment gives a shape ({match.group(1)}) but the value is a {type(value).__name__}"
    try:
        expected = tuple(eval(d, {"__builtins__": {}}, shape_symbols(namespace))  # noqa: S307 (README text)
                         for d in match.group(1).split(",") if d.strip())
    except NameError as e:
        return f"shape comment ({match.group(1)}): {e}; give its value in shape_symbols (tests/test_readme.py)"
    if tuple(value.shape) != expected:
        return f"the value's shape is {tuple(value.shape)}, the comment says {expected}"
    return None


def run_block(first_line: int, code: str, namespace: dict[str, Any], workspace: Path) -> list[str]:
    """Run ``code`` one statement at a time in ``namespace`` -> one message per statement that failed."""
    failures = []
    comments = {t.start[0]: t.string for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type == tokenize.COMMENT}
    for stmt in ast.parse(code).body:
        where = f"README.md line {first_line + stmt.lineno - 1}: `{ast.get_source_segment(code, stmt)}`"
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
            name = stmt.targets[0].id if isinstance(stmt.targets[0], ast.Name) else None
            make = stand_ins(workspace).get(name)  # type: ignore[arg-type]
            if make is None:
                failures.append(f"{where}: no stand-in for `...`; add one to stand_ins() in tests/test_readme.py")
                continue
            namespace[name] = make()  # type: ignore[index]
        else:
            try:
                with working_directory(workspace):
                    exec(compile(ast.Module([stmt], type_ignores=[]), f"README.md:{first_line}", "exec"), namespace)
            except Exception as e:
                failures.append(f"{where}: {type(e).__name__}: {e}")
                continue
        problem = shape_problem(stmt, comments.get(stmt.end_lineno), namespace)  # type: ignore[arg-type]
        if problem:
            failures.append(f"{where}: {problem}")
    return failures


@pytest.fixture(scope="module")
def hub(workspace, tmp_path_factory) -> Iterator[None]:
    """A local server standing in for the Hugging Face Hub, holding the README's "model.pt" as the LIV
    release (``jasonyma/LIV``), so that ``liv.load("liv-resnet50")`` runs the real download and cache path."""
    from hub_server import Content, HubServer, Repo

    commit = "c" * 40
    release = {"model.pt": (workspace / "model.pt").read_bytes(), "config.yaml": b"agent:\n  size: 50\n"}
    cache = tmp_path_factory.mktemp("readme_cache")
    with HubServer(Content(repos={"jasonyma/LIV": Repo({"main": commit}, {commit: release})})) as server, \
            pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "LIV_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
            mp.delenv(var, raising=False)
        mp.setenv("HF_ENDPOINT", server.url)
        mp.setenv("HF_HOME", str(cache / "hf"))
        mp.setenv("LIV_CACHE", str(cache / "liv"))
        yield


@pytest.fixture(scope="module")
def readme_run(workspace, hub) -> tuple[dict[str, Any], list[str]]:
    """(names the README's Python blocks defined, failures), the blocks run in order in one namespace."""
    namespace: dict[str, Any] = {}
    failures: list[str] = []
    for first_line, code in python_blocks(README.read_text()):
        failures += run_block(first_line, code, namespace, workspace)
    return namespace, failures


def test_every_python_block_statement_runs(readme_run):
    namespace, failures = readme_run
    assert not failures, "\n".join(failures)
    assert namespace, "README.md has no ```python block: is FENCE still right?"


def test_every_liv_call_in_the_prose_runs(readme_run, workspace):
    namespace, _ = readme_run
    calls = prose_calls(README.read_text())
    assert calls, "no `liv...(...)` call found in README.md's prose: is the span parser still right?"
    makers = stand_ins(workspace)
    failures = []
    for span in calls:
        scope = dict(namespace)
        free = {n.id for n in ast.walk(ast.parse(span, mode="eval")) if isinstance(n, ast.Name)}
        for name in sorted(free - set(scope) - set(dir(builtins)) - {"liv"}):
            if name not in makers:
                failures.append(f"`{span}`: no stand-in for {name!r}; add one to stand_ins() in tests/test_readme.py")
                break
            scope[name] = makers[name]()
        else:
            scope["liv"] = liv
            try:
                with working_directory(workspace), warnings.catch_warnings():  # a filter call stays here
                    eval(span, scope)  # noqa: S307 (README text)
            except Exception as e:
                failures.append(f"`{span}`: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


def test_every_liv_name_resolves_after_a_bare_import():
    """In a fresh interpreter, `import liv` alone (no torch yet), then each name as an attribute chain."""
    text = README.read_text()
    names = sorted(set(LIV_NAME.findall(" ".join(prose_spans(text)) + "\n" + "\n".join(
        code for _, code in python_blocks(text)))))
    assert names, "no liv.X name found in README.md"
    script = """if True:
        import functools, json, sys
        import liv
        torch_after_import = "torch" in sys.modules
        failed = []
        for name in json.loads(sys.argv[1]):
            try:
                functools.reduce(getattr, name.split(".")[1:], liv)
            except Exception as e:
                failed.append(f"{name}: {type(e).__name__}: {e}")
        print(json.dumps({"torch_after_import": torch_after_import, "failed": failed}))
    """
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(names)], capture_output=True, text=True,
                          env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert not result["failed"], "\n".join(result["failed"])
    assert result["torch_after_import"] is False

"""The `liv` command line, run as a real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import liv


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "liv", *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"liv {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "tiny"
    liv.create("clip-tiny", seed=3).save(path)
    return path


def test_help_is_generated_from_the_config_docstrings():
    out = run("embed", "--help").stdout
    assert "L2-normalise the embeddings" in out and "--no-normalize" in out
    assert "default: cpu" in out


def test_info_text_and_json(tiny_dir):
    assert "preset clip-tiny" in run("info", tiny_dir).stdout
    info = json.loads(run("info", tiny_dir, "--json").stdout)
    assert info["embed_dim"] == 128 and info["provenance"]["seed"] == 3
    assert info["parameters"] == liv.load(tiny_dir).num_parameters()


def test_embed_writes_what_the_api_computes(tmp_path, tiny_dir):
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    out = tmp_path / "emb.npz"
    run("embed", "--model", tiny_dir, "--text", "open drawer", "close drawer", "--images", tmp_path / "a.png",
        "--out", out)
    data = np.load(out)
    model = liv.load(tiny_dir)
    assert data["text_embeddings"].shape == (2, 128) and list(data["texts"]) == ["open drawer", "close drawer"]
    np.testing.assert_allclose(data["text_embeddings"], model.encode_texts(["open drawer", "close drawer"]).numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(data["image_embeddings"], model.encode_images(img).numpy(), atol=1e-6)


def test_convert_reference_release_to_liv_format(tmp_path, reference_fixtures):
    run("convert", reference_fixtures / "checkpoint_liv.pt", tmp_path / "conv")
    converted = liv.load(tmp_path / "conv")
    original = liv.load(reference_fixtures / "checkpoint_liv.pt")
    assert converted.config.antialias is False
    assert converted.config.provenance["source_format"] == "liv-release"
    for a, b in zip(converted.state_dict().values(), original.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())


def test_errors_are_one_clear_line_with_status_2(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    proc = run("info", bad, check=False)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = run("embed", "--model", bad, "--out", tmp_path / "x.npz", check=False)
    assert proc.returncode == 2 and "nothing to embed" in proc.stderr


def test_list_options_replace_their_default_and_accumulate():
    import argparse
    from dataclasses import dataclass, field

    from liv.cli_args import add_dataclass_arguments, dataclass_from_args

    @dataclass
    class Args:
        names: list[str] = field(default_factory=lambda: ["a", "b"])
        """Names."""

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Args)
    assert dataclass_from_args(Args, parser.parse_args([])).names == ["a", "b"]
    assert dataclass_from_args(Args, parser.parse_args(["--names", "x"])).names == ["x"]
    assert dataclass_from_args(Args, parser.parse_args(["--names", "x", "--names", "y", "z"])).names == ["x", "y", "z"]


def test_a_percent_sign_in_a_docstring_prints_as_written():
    """argparse %-formats help text: '20-60% of' once made `liv sim generate --help` crash."""
    import argparse
    from dataclasses import dataclass

    from liv.cli_args import add_dataclass_arguments

    @dataclass
    class Args:
        share: float = 0.5
        """Expert for 20-60% of the steps, 100% (%d) literal."""

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Args)
    assert "20-60% of the steps, 100% (%d) literal. (default: 0.5)" in " ".join(parser.format_help().split())
    assert "20-60% of the steps" in " ".join(run("sim", "generate", "--help").stdout.split())
    # A command's line in `liv --help` is its docstring's whole first sentence, even where it wraps.
    assert "simulation suite (Meta-World or the kitchen)." in " ".join(run("--help").stdout.split())

"""Named pretrained models, downloaded and cached: a local HTTP server (tests/hub_server.py) stands in for the
Hugging Face Hub (HF_ENDPOINT) and for OpenAI's host (LIV_OPENAI_ENDPOINT), serving clip-tiny files in the
reference's layout, as a TorchScript archive and in liv's format. Nothing here reaches the internet."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import liv
from hub_server import Content, HubServer, Repo
from liv.cli import main
from liv.model_names import PRETRAINED, openai_url, resolve_model

MAIN, OLD = "a" * 40, "b" * 40
FRAMES = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)


def _bytes_of(save) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The files the server holds, and local copies of them: clip-tiny seed 0 in the reference's release
    layout and as an OpenAI-style TorchScript archive, clip-tiny seed 1 as a liv model folder."""
    root = tmp_path_factory.mktemp("served")
    tiny = liv.create("clip-tiny", seed=0)
    release = _bytes_of(lambda f: torch.save({"liv": {"module.model." + k: v for k, v in
                                                      tiny.clip.state_dict().items()}}, f))
    with warnings.catch_warnings():  # tracing warns about data-dependent branches: only the weights matter
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(tiny.clip.eval(), {"encode_image": torch.zeros(1, 3, 64, 64)},
                                        check_trace=False)
        torchscript = _bytes_of(lambda f: torch.jit.save(traced, f))
    liv.create("clip-tiny", seed=1).save(root / "liv_format")
    native = {p.name: p.read_bytes() for p in (root / "liv_format").iterdir()}
    (root / "model.pt").write_bytes(release)
    (root / "RN50.pt").write_bytes(torchscript)
    return {"root": root, "release": release, "torchscript": torchscript, "native": native}


@pytest.fixture()
def hub(served, tmp_path, monkeypatch):
    """A running server with the LIV release, two liv repositories and OpenAI's file; every cache in tmp_path."""
    sha = hashlib.sha256(served["torchscript"]).hexdigest()
    entry = dataclasses.replace(PRETRAINED["openai-rn50"], url_path=f"/clip/models/{sha}/RN50.pt", sha256=sha)
    monkeypatch.setitem(PRETRAINED, "openai-rn50", entry)
    content = Content(
        repos={"jasonyma/LIV": Repo({"main": MAIN}, {MAIN: {"model.pt": served["release"],
                                                            "config.yaml": b"agent:\n  size: 50\n"}}),
               "someone/liv-tiny": Repo({"main": MAIN}, {MAIN: served["native"], OLD: {"model.pt": served["release"]}}),
               "someone/many": Repo({"main": MAIN}, {MAIN: {f"tiny/{k}": v for k, v in served["native"].items()}})},
        files={entry.url_path: served["torchscript"]})
    with HubServer(content) as server:
        for var in ("HF_HUB_OFFLINE", "LIV_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("LIV_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("LIV_CACHE", str(tmp_path / "liv_cache"))
        yield server


def _gets(server, path_end: str) -> list[str | None]:
    """The Range headers of the GETs of a path ending so (None: the whole file)."""
    return [r for m, p, r in server.content.log if m == "GET" and p.endswith(path_end)]


def _same_embeddings(a: liv.LIVModel, b: liv.LIVModel) -> None:
    assert torch.equal(a.encode_images(FRAMES), b.encode_images(FRAMES))
    assert torch.equal(a.encode_texts(["open the drawer"]), b.encode_texts(["open the drawer"]))


def test_the_liv_release_downloads_once_and_loads_like_the_local_file(hub, served):
    model = liv.load("liv-resnet50")
    _same_embeddings(model, liv.load(served["root"] / "model.pt"))
    assert model.config.provenance["pretrained"] == "liv-resnet50"
    assert model.config.provenance["revision"] == MAIN and model.config.provenance["source_format"] == "liv-release"
    assert _gets(hub, "/model.pt") == [None] and _gets(hub, "/config.yaml") == [None]
    liv.load("liv")  # an alias: the same files, from the cache
    assert _gets(hub, "/model.pt") == [None]
    hub.stop()  # the server is gone: the cache serves
    _same_embeddings(liv.load("resnet50"), model)


def test_openai_rn50_is_checked_and_read_without_torchscript(hub, served, monkeypatch):
    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load must never be called")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    model = liv.load("openai-rn50")
    _same_embeddings(model, liv.load(served["root"] / "RN50.pt"))
    assert model.config.provenance["source_format"] == "openai-torchscript"
    assert model.config.provenance["source"] == hub.url + PRETRAINED["openai-rn50"].url_path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached: no request at all
    requests = len(hub.content.log)
    liv.load("openai-rn50")
    assert len(hub.content.log) == requests


def test_the_registry_names_the_published_sources(monkeypatch):
    # Entries as their public sources give them: the reference's load_liv() and OpenAI's clip/clip.py.
    monkeypatch.delenv("LIV_OPENAI_ENDPOINT", raising=False)
    release, rn50 = PRETRAINED["liv-resnet50"], PRETRAINED["openai-rn50"]
    assert (release.hub_repo, release.hub_files, release.aliases) == ("jasonyma/LIV", ("model.pt", "config.yaml"),
                                                                      ("liv", "resnet50"))
    url = openai_url(rn50)
    assert url == ("https://openaipublic.azureedge.net/clip/models/"
                   "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt")
    assert url.split("/")[-2] == rn50.sha256  # CLIP's loader checks the SHA-256 written in the URL


def test_hf_names_liv_format_pinned_revision_and_subfolder(hub, served):
    seed1 = liv.create("clip-tiny", seed=1)
    _same_embeddings(liv.load("hf://someone/liv-tiny"), seed1)
    _same_embeddings(liv.load("hf://someone/many/tiny"), seed1)
    old = liv.load(f"hf://someone/liv-tiny@{OLD}")  # the older commit holds the release layout of seed 0
    _same_embeddings(old, liv.load(served["root"] / "model.pt"))
    assert old.config.provenance["revision"] == OLD and old.config.provenance["base_model"] == "someone/liv-tiny"
    with pytest.raises(liv.CheckpointError, match="has no revision nope"):
        liv.load("hf://someone/liv-tiny@nope")
    with pytest.raises(liv.CheckpointError, match="no Hugging Face repository someone/absent"):
        liv.load("hf://someone/absent")
    with pytest.raises(liv.CheckpointError, match="has neither a liv model .* nor a model.pt in someone/many$"):
        liv.load("hf://someone/many")


def test_offline_uses_the_cache_and_an_empty_cache_says_what_to_download(hub, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, expected in [("liv-resnet50", f"{hub.url}/jasonyma/LIV"), ("hf://someone/liv-tiny",
                                                                         f"{hub.url}/someone/liv-tiny"),
                           ("openai-rn50", hub.url + PRETRAINED["openai-rn50"].url_path)]:
        assert main(["info", name]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith(f"liv info: error: {name}: "), err
        assert "downloads are off" in err and expected in err and "path" in err and "local" in err
    assert hub.content.log == []  # nothing was asked of the server
    monkeypatch.delenv("HF_HUB_OFFLINE")
    first = liv.load("hf://someone/liv-tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests = len(hub.content.log)
    _same_embeddings(liv.load("hf://someone/liv-tiny"), first)
    assert len(hub.content.log) == requests


def test_a_wrong_checksum_is_refused_and_nothing_stays(hub, served, tmp_path):
    path = PRETRAINED["openai-rn50"].url_path
    hub.content.files[path] = served["release"]  # another file than the one published
    with pytest.raises(liv.CheckpointError, match="not the published .* it was deleted"):
        liv.load("openai-rn50")
    assert [p for p in (tmp_path / "liv_cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []


def test_a_download_cut_off_is_resumed_and_never_taken_as_complete(hub, served, tmp_path):
    path = PRETRAINED["openai-rn50"].url_path
    size = len(served["torchscript"])
    hub.content.cut[path] = [size // 3]
    liv.load("openai-rn50")
    assert _gets(hub, "RN50.pt") == [None, f"bytes={size // 3}-"]  # the second request continued the first
    # cut off every time: refused, the part kept under another name, and the next call finishes it
    hub.content.cut[path], chunks = [1000] * 4, 4000
    cached = next((tmp_path / "liv_cache").rglob("RN50.pt"))
    cached.unlink()
    with pytest.raises(liv.CheckpointError, match="broke off 4 times .* 4000 bytes are kept"):
        liv.load("openai-rn50")
    assert not cached.exists() and cached.with_name("RN50.pt.part").stat().st_size == chunks
    model = liv.load("openai-rn50")
    assert _gets(hub, "RN50.pt")[-1] == f"bytes={chunks}-" and cached.read_bytes() == served["torchscript"]
    _same_embeddings(model, liv.load(served["root"] / "RN50.pt"))
    # the Hub's files: huggingface_hub resumes them from the last whole chunk it wrote (10 MiB)
    hub.content.cut["/jasonyma/LIV/resolve/main/model.pt"] = [len(served["release"]) // 2]
    _same_embeddings(liv.load("liv-resnet50"), liv.load(served["root"] / "model.pt"))
    first, again = _gets(hub, "/model.pt")
    assert first is None and 0 < int(again.removeprefix("bytes=").removesuffix("-")) <= len(served["release"]) // 2


class _ExecPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


def test_a_hostile_pickle_under_a_name_is_refused_like_a_local_one(hub, tmp_path):
    marker = tmp_path / "pwned"
    evil = _bytes_of(lambda f: torch.save({"liv": {"module.model.visual.conv1.weight": _ExecPayload(marker)}}, f))
    hub.content.repos["jasonyma/LIV"].commits[MAIN]["model.pt"] = evil
    (tmp_path / "evil.pt").write_bytes(evil)
    with pytest.raises(liv.CheckpointError) as local:
        liv.load(tmp_path / "evil.pt")
    with pytest.raises(liv.CheckpointError) as named:
        liv.load("liv-resnet50")
    assert "could execute code" in str(named.value) and "exec" in str(named.value)
    assert str(named.value).split(": ", 1)[1] == str(local.value).split(": ", 1)[1]  # same reason, other file
    assert not marker.exists()


def test_a_local_path_named_like_a_registry_name_wins(hub, tmp_path, monkeypatch):
    liv.create("clip-tiny", seed=7).save(tmp_path / "liv")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("liv").path == Path("liv")
    assert liv.load("liv").config.provenance == {"init": "random", "seed": 7}
    assert hub.content.log == []


def test_liv_models_lists_sources_licences_and_what_is_cached(hub, capsys):
    liv.load("liv-resnet50")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["liv-resnet50"]["cached"].endswith("model.pt") and rows["openai-rn50"]["cached"] is None
    assert rows["liv-resnet50"]["cached_bytes"] > 10**6 and rows["openai-rn50"]["license"] == "MIT"
    assert rows["liv-resnet50"]["source"].startswith("hf://jasonyma/LIV")
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "ALIASES", "SIZE", "LICENCE", "CACHED", "SOURCE"]
    assert table[1].split()[:3] == ["liv-resnet50", "liv,", "resnet50"] and " yes " in table[1]
    assert " no " in table[2]


def test_a_saved_folder_uploaded_as_it_is_loads_back_by_name(hub, tmp_path):
    from huggingface_hub import ModelCard

    model = liv.load("liv-resnet50")
    model.save(tmp_path / "mine")
    card = ModelCard.load(tmp_path / "mine" / "README.md")
    assert card.data.library_name == "liv" and card.data.license == "mit" and card.data.base_model == "jasonyma/LIV"
    assert "liv" in card.data.tags and "clip-tiny" in card.data.tags
    # what `huggingface-cli upload me/mine mine/` publishes: every file of the folder
    hub.content.repos["me/mine"] = Repo({"main": MAIN}, {MAIN: {p.name: p.read_bytes()
                                                               for p in (tmp_path / "mine").iterdir()}})
    again = liv.load("hf://me/mine")
    _same_embeddings(again, model)
    assert again.config.provenance["pretrained"] == "liv-resnet50" and again.config.provenance["loaded_from"] == \
        "hf://me/mine"


def test_commands_take_hub_names_and_check_them_all_before_working(hub, tmp_path, capsys):
    from liv.data.frame_folders import write_frame_folders

    rng = np.random.default_rng(0)
    write_frame_folders(tmp_path / "frames", [("open", rng.integers(0, 256, (3, 16, 16, 3), np.uint8)),
                                              ("close", rng.integers(0, 256, (3, 16, 16, 3), np.uint8))])
    common = ["--data", str(tmp_path / "frames"), "--out", str(tmp_path / "cmp")]
    assert main(["compare", "--models", "liv-resnet50", "hf://someone/absent", *common]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "hf://someone/absent: no Hugging Face repository someone/absent" in err
    assert not (tmp_path / "cmp").exists()
    assert main(["compare", "--models", "hf://someone/liv-tiny", "clip-tiny", *common]) == 0
    assert list(json.loads((tmp_path / "cmp" / "compare.json").read_text())) == ["hf://someone/liv-tiny", "clip-tiny"]
    assert main(["train", "--data", str(tmp_path / "frames"), "--out", str(tmp_path / "run"), "--init", "hf://bad",
                 "--no-progress"]) == 2
    assert "--init: hf://bad: a Hub name is hf://OWNER/REPO[@REVISION][/SUBFOLDER]" in capsys.readouterr().err


def test_a_card_is_never_written_into_a_download_cache(hub, tmp_path, capsys):
    from liv.data.frame_folders import write_frame_folders

    rng = np.random.default_rng(0)
    write_frame_folders(tmp_path / "frames", [("open", rng.integers(0, 256, (3, 16, 16, 3), np.uint8))])
    status = main(["evaluate", "--model", "hf://someone/liv-tiny", "--data", str(tmp_path / "frames"),
                   "--out", str(tmp_path / "report"), "--card"])
    err = capsys.readouterr().err
    assert status == 2 and "--card: hf://someone/liv-tiny is a downloaded model" in err
    cached = list((tmp_path / "hf").rglob("README.md"))
    assert cached == [] and not (tmp_path / "report").exists()

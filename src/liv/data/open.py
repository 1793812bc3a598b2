"""Open any supported dataset from a path, detecting its format."""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from typing import Literal

from liv.data.episodes import DataError, EpisodeDataset
from liv.data.frame_folders import IMAGE_SUFFIXES, listing, read_frame_folders, read_image_folder
from liv.data.manifests import MANIFEST_NAME, read_header
from liv.data.video_files import VIDEO_SUFFIXES, read_video_file, read_video_manifest

DatasetFormat = Literal["auto", "frames", "video", "lerobot"]

_LOOKED_FOR = (f"a LeRobot dataset (a folder with meta/info.json); a {MANIFEST_NAME} (or a folder holding one) "
               f"whose header has 'directory' (frame folders) or 'path' (videos); a video file "
               f"({', '.join(VIDEO_SUFFIXES)}); a folder of images ({', '.join(IMAGE_SUFFIXES)})")


def open_dataset(path: str | os.PathLike[str], format: DatasetFormat = "auto", camera: str | None = None,
                 text: str | None = None, errors: list[DataError] | None = None) -> EpisodeDataset:
    """Open the dataset at ``path`` -> EpisodeDataset (no frame is decoded).

    ``format="auto"`` detects, in this order: a folder with ``meta/info.json`` (LeRobot; ``camera``
    picks the image key), a CSV manifest or a folder holding ``manifest.csv`` (header with
    ``directory``: frame folders; with ``path``: videos), a single video file, a folder of images.
    A single video or image folder is one episode whose annotation is ``text`` (required there,
    refused elsewhere). ``errors``: when a list, bad manifest records are appended to it and skipped
    instead of raising. Raises DataError naming the path when nothing matches.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(str(p), "no such file or folder")
    if format not in ("auto", "frames", "video", "lerobot"):
        raise DataError(str(p), f"unknown format {format!r}; use auto, frames, video or lerobot")
    kind = _detect(p) if format == "auto" else _check_format(p, format)
    if camera is not None and kind != "lerobot":
        raise DataError(str(p), f"camera={camera!r} applies only to LeRobot datasets, and this is {kind.replace('_', ' ')}")
    if text is not None and kind not in ("video_file", "image_folder"):
        raise DataError(str(p), "text= applies only to a single video file or a folder of images; this dataset's "
                                "texts come from its own files")
    if kind in ("video_file", "image_folder") and not text:
        what = "a single video file" if kind == "video_file" else "a folder of images"
        raise DataError(str(p), f"this is {what}: give its annotation with text=... (--text on the command line)")
    if kind == "lerobot":
        return _read_lerobot(p, camera, collect=errors is not None)
    if kind == "frames_manifest":
        return read_frame_folders(p, errors=errors)
    if kind == "video_manifest":
        return read_video_manifest(p, errors=errors)
    if kind == "video_file":
        return read_video_file(p, text)
    return read_image_folder(p, text)


def _read_lerobot(root: Path, camera: str | None, collect: bool) -> EpisodeDataset:
    try:
        module = importlib.import_module("liv.data.lerobot")
    except ModuleNotFoundError as e:
        if e.name != "liv.data.lerobot":
            raise DataError(str(root), f"the LeRobot reader needs {e.name}: pip install 'liv[lerobot]'") from None
        raise DataError(str(root), "this is a LeRobot dataset, but the LeRobot reader (liv.data.lerobot) is "
                                   "unavailable in this installation") from None
    options = {}
    if collect and "check_videos" in inspect.signature(module.read_lerobot).parameters:
        # Collecting problems: let each episode's validate() report its missing video, not the first one.
        options["check_videos"] = False
    return module.read_lerobot(root, camera=camera, **options)


def _manifest_kind(manifest: Path) -> str | None:
    """"frames_manifest" / "video_manifest" from a CSV header, None if it has neither key column."""
    header = read_header(manifest)
    if "directory" in header and "path" in header:
        raise DataError(str(manifest), "the header has both 'directory' (frame folders) and 'path' (videos); "
                                       "pass format='frames' or format='video'")
    if "directory" in header:
        return "frames_manifest"
    if "path" in header:
        return "video_manifest"
    return None


def _detect(p: Path) -> str:
    if p.is_dir():
        if (p / "meta" / "info.json").is_file():
            return "lerobot"
        if (p / MANIFEST_NAME).is_file():
            kind = _manifest_kind(p / MANIFEST_NAME)
            if kind is None:
                raise DataError(str(p / MANIFEST_NAME), "the header has neither 'directory' (frame folders: "
                                                        "directory,num_frames,text) nor 'path' (videos: path,text)")
            return kind
        if any(Path(n).suffix.lower() in IMAGE_SUFFIXES for n in listing(p) or ()):
            return "image_folder"
    elif p.suffix.lower() == ".csv":
        kind = _manifest_kind(p)
        if kind is None:
            raise DataError(str(p), "the header has neither 'directory' (frame folders: directory,num_frames,text) "
                                    "nor 'path' (videos: path,text)")
        return kind
    elif p.suffix.lower() in VIDEO_SUFFIXES:
        return "video_file"
    raise DataError(str(p), f"cannot tell what dataset this is; looked for {_LOOKED_FOR}")


def _check_format(p: Path, format: str) -> str:
    """The reader for an explicit ``format``, with a clear error when ``p`` cannot be of that format."""
    if format == "lerobot":
        if not (p / "meta" / "info.json").is_file():
            raise DataError(str(p), "not a LeRobot dataset: meta/info.json not found")
        return "lerobot"
    manifest = p / MANIFEST_NAME if p.is_dir() else p
    if format == "frames":
        if manifest.is_file() and manifest.suffix.lower() == ".csv":
            return "frames_manifest"
        if p.is_dir():
            return "image_folder"
        raise DataError(str(p), f"format 'frames' needs a {MANIFEST_NAME}, a folder holding one, or a folder of images")
    if manifest.is_file() and manifest.suffix.lower() == ".csv":
        return "video_manifest"
    if p.is_file():
        return "video_file"
    raise DataError(str(p), f"format 'video' needs a {MANIFEST_NAME}, a folder holding one, or a video file")

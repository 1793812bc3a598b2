"""Text-annotated video datasets: the Episode abstraction, readers for each format, checks, sampling.

``open_dataset(path)`` reads any supported format (frame folders + manifest.csv, video files +
manifest.csv, LeRobot v2.1/v3.0, a single video or image folder) as an :class:`EpisodeDataset`;
``check_dataset`` lists every problem with its file and line. Names and submodules are imported on
first use (see :mod:`liv._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liv._lazy import lazy_attributes

__all__ = ["ArrayFrames", "CheckReport", "DataError", "Episode", "EpisodeDataset", "FrameSource", "check_dataset",
           "open_dataset", "read_frame_folders", "read_lerobot", "read_video_manifest", "write_frame_folders",
           "write_lerobot", "write_video", "write_video_manifest"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "ArrayFrames": "episodes", "DataError": "episodes", "Episode": "episodes", "EpisodeDataset": "episodes",
    "FrameSource": "episodes", "CheckReport": "check", "check_dataset": "check", "open_dataset": "open",
    "read_frame_folders": "frame_folders", "write_frame_folders": "frame_folders", "read_lerobot": "lerobot",
    "write_lerobot": "lerobot", "read_video_manifest": "video_files", "write_video": "video_write",
    "write_video_manifest": "video_write",
})

if TYPE_CHECKING:
    from liv.data.check import CheckReport, check_dataset
    from liv.data.episodes import ArrayFrames, DataError, Episode, EpisodeDataset, FrameSource
    from liv.data.frame_folders import read_frame_folders, write_frame_folders
    from liv.data.lerobot import read_lerobot, write_lerobot
    from liv.data.open import open_dataset
    from liv.data.video_files import read_video_manifest
    from liv.data.video_write import write_video, write_video_manifest

"""Text-annotated video datasets: the Episode abstraction, readers for each format, checks, sampling.

``open_dataset(path)`` reads any supported format (frame folders + manifest.csv, video files +
manifest.csv, LeRobot v2.1/v3.0, a single video or image folder) as an :class:`EpisodeDataset`;
``check_dataset`` lists every problem with its file and line.
"""

from liv.data.check import CheckReport, check_dataset
from liv.data.episodes import ArrayFrames, DataError, Episode, EpisodeDataset, FrameSource
from liv.data.frame_folders import read_frame_folders, write_frame_folders
from liv.data.lerobot import read_lerobot, write_lerobot
from liv.data.open import open_dataset
from liv.data.video_files import read_video_manifest
from liv.data.video_write import write_video, write_video_manifest

__all__ = ["ArrayFrames", "CheckReport", "DataError", "Episode", "EpisodeDataset", "FrameSource", "check_dataset",
           "open_dataset", "read_frame_folders", "read_lerobot", "read_video_manifest", "write_frame_folders",
           "write_lerobot", "write_video", "write_video_manifest"]

"""Text-annotated video datasets: the Episode abstraction, readers for each format, sampling."""

from liv.data.episodes import ArrayFrames, DataError, Episode, EpisodeDataset, FrameSource

__all__ = ["ArrayFrames", "DataError", "Episode", "EpisodeDataset", "FrameSource"]

"""Synthetic episodes for the data tests: frame order survives lossy codecs."""

import numpy as np


def make_frames(length: int, seed: int, height: int = 32, width: int = 48) -> np.ndarray:
    """(T, H, W, 3) uint8: a smooth gradient plus flat blocks whose colours encode the frame index."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    frames = np.repeat(base[None], length, 0).astype(np.int64)
    for i in range(length):
        frames[i, : height // 2, : width // 2] = (i * 23) % 256
        frames[i, height // 2:, width // 2:] = rng.integers(0, 256, 3)
    return frames.astype(np.uint8)


EPISODES = [("open the drawer", make_frames(6, 0)), ("close the microwave", make_frames(9, 1)),
            ("pick up the red block", make_frames(12, 2))]

"""Regenerate the golden numbers of a seeded tiny model: `python tests/golden/make_golden.py`.

Run it only when a change to initialisation, architecture or preprocessing is intended; commit the
new JSON with the change that explains it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN_FILE = Path(__file__).with_name("clip_tiny_seed0.json")
PRESET, SEED = "clip-tiny", 0
TEXTS = ["open the drawer", "close the drawer", "turn the faucet left"]


def golden_frames() -> np.ndarray:
    """(3, 72, 96, 3) uint8: a smooth gradient, a checkerboard and seeded noise (resize + crop exercised)."""
    yy, xx = np.mgrid[0:72, 0:96]
    gradient = np.stack([xx * 2, yy * 3, (xx + yy)], axis=-1).astype(np.uint8)
    checker = ((((yy // 8) + (xx // 8)) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    noise = np.random.default_rng(123).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    return np.stack([gradient, checker, noise])


def compute() -> dict:
    """Embeddings and similarities of the golden inputs under ``liv.create(PRESET, SEED)``."""
    import liv

    model = liv.create(PRESET, seed=SEED)
    images = model.encode_images(golden_frames())
    texts = model.encode_texts(TEXTS)
    sims = [model.similarity(golden_frames(), t).tolist() for t in TEXTS]
    return {"preset": PRESET, "seed": SEED, "texts": TEXTS, "image_embeddings": images.tolist(),
            "text_embeddings": texts.tolist(), "similarity_frames_x_texts": np.array(sims).T.tolist()}


if __name__ == "__main__":
    GOLDEN_FILE.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {GOLDEN_FILE}")

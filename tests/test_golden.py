"""A seeded tiny model's outputs are pinned: any change to init, architecture or preprocessing shows."""

import importlib.util
import json
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("make_golden", Path(__file__).parent / "golden" / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)


def test_tiny_preset_outputs_equal_the_golden_numbers():
    expected = json.loads(make_golden.GOLDEN_FILE.read_text())
    actual = make_golden.compute()
    for key in ("image_embeddings", "text_embeddings", "similarity_frames_x_texts"):
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
    # The golden inputs must be informative: distinct frames give distinct embeddings.
    emb = np.array(expected["image_embeddings"])
    assert np.abs(emb[0] - emb[1]).max() > 1e-3

"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _reference_fixture_candidates() -> list[Path]:
    candidates = []
    if env := os.environ.get("LIV_REFERENCE_FIXTURES"):
        candidates.append(Path(env))
    # Checkouts sit next to a shared/ folder holding the reference outputs.
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared/fixtures/reference_liv")
    return candidates


def find_reference_fixtures() -> Path | None:
    """Directory of the reference LIV golden data ($LIV_REFERENCE_FIXTURES first), or None."""
    return next((p for p in _reference_fixture_candidates() if p.is_dir()), None)


@pytest.fixture(scope="session")
def reference_fixtures() -> Path:
    """Path to the reference fixtures directory; skips the test when it cannot be found."""
    path = find_reference_fixtures()
    if path is None:
        looked = ", ".join(map(str, _reference_fixture_candidates()))
        pytest.skip(f"no reference fixtures (set LIV_REFERENCE_FIXTURES); looked in: {looked}")
    return path


@pytest.fixture(scope="module")
def tiny_state_dict():
    """clip-tiny's CLIP state dict at seed 0: {key: tensor}, a copy per test module."""
    import liv

    return {k: v.clone() for k, v in liv.create("clip-tiny", seed=0).clip.state_dict().items()}

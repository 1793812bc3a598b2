"""Evaluation of LIV rewards without a robot: value-curve metrics, dataset evaluation, HTML reports.

Names and submodules are imported on first use (see :mod:`liv._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liv._lazy import lazy_attributes

__all__ = ["alignment", "auroc", "average_ranks", "confusion_matrix", "evaluate_dataset", "negative_rate",
           "retrieval_accuracy", "voc", "without_curves"]

__getattr__, __dir__ = lazy_attributes(__name__, dict.fromkeys(__all__, "metrics"))

if TYPE_CHECKING:
    from liv.eval.metrics import (alignment, auroc, average_ranks, confusion_matrix, evaluate_dataset, negative_rate,
                                  retrieval_accuracy, voc, without_curves)

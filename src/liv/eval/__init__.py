"""Evaluation of LIV rewards without a robot: value-curve metrics, dataset evaluation, HTML reports."""

from liv.eval.metrics import (alignment, auroc, average_ranks, confusion_matrix, evaluate_dataset, negative_rate,
                              retrieval_accuracy, voc, without_curves)

__all__ = ["alignment", "auroc", "average_ranks", "confusion_matrix", "evaluate_dataset", "negative_rate",
           "retrieval_accuracy", "voc", "without_curves"]

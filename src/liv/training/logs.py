"""A run's logs: ``metrics.jsonl``, ``eval.jsonl``, ``data_errors.jsonl`` (one JSON object a line) and
TensorBoard (``tensorboard/``), written by the main process only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liv.checkpoints.native import atomic_write

METRICS, EVAL, DATA_ERRORS = "metrics.jsonl", "eval.jsonl", "data_errors.jsonl"
TENSORBOARD = "tensorboard"


class RunLogs:
    """Appends to the logs in ``directory``; :meth:`move_to` follows the run when an --overwrite run's
    files move into place (see liv.training.run_dir)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._writer = None

    @property
    def writer(self):
        """The TensorBoard SummaryWriter, created at first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.directory / TENSORBOARD))
        return self._writer

    def _append(self, name: str, records: list[dict[str, Any]]) -> None:
        if records:
            with open(self.directory / name, "a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in records))

    def metrics(self, record: dict[str, Any]) -> None:
        """One training log record (``step`` and scalars) -> metrics.jsonl and TensorBoard ``train/*``."""
        self._append(METRICS, [record])
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"train/{key}", value, record["step"])

    def evaluation(self, step: int, scalars: dict[str, float]) -> None:
        """Evaluation scalars of ``step`` -> eval.jsonl and TensorBoard ``eval/*``."""
        self._append(EVAL, [{"step": step, **scalars}])
        for key, value in scalars.items():
            self.writer.add_scalar(f"eval/{key}", value, step)

    def data_errors(self, records: list[dict[str, Any]]) -> None:
        """Records of samples left out as unreadable -> data_errors.jsonl."""
        self._append(DATA_ERRORS, records)

    def move_to(self, directory: Path) -> None:
        """Write to ``directory`` from now on (the files already written have been moved there)."""
        self.close()
        self.directory = directory

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def trim_logs(directory: Path, step: int) -> None:
    """Before a run resumes at ``step`` (optimiser steps done): drop what it will log again, i.e. the
    metrics and evaluations of later steps and the data errors of batches from ``step`` on (a batch's
    ``step`` counts from 0), and a line cut short by a kill. Each file is replaced atomically."""
    for name, last in ((METRICS, step), (EVAL, step), (DATA_ERRORS, step - 1)):
        path = directory / name
        if not path.is_file():
            continue
        kept = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the partial last line of a killed write
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last:
                kept.append(line + "\n")
        atomic_write(path, lambda p: p.write_text("".join(kept)))

"""The training loop's side of unreadable samples: count them, log them, stop past ``--max-bad-samples``.

The loader's workers replace each sample they cannot read and list it in the batch (liv.training.batches);
the main process logs every one to ``data_errors.jsonl``, warns once per file, and keeps the count a
checkpoint saves, so a resumed run continues it. With several processes each one's records are gathered
only where the loop reads back from the device anyway (log, save, evaluation, the end), so all of them
decide to stop at the same step, and a checkpoint counts every bad sample before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SHOWN_FILES = 20
"""Files warned about one by one; the rest are only logged (a warning says so)."""


class BadSamples:
    """The bad-sample count of a run and its limit.

    ``limit``: --max-bad-samples; ``count``: bad samples of the steps already done (from the checkpoint a
    run resumes); ``log``: appends records to data_errors.jsonl (the main process), or None;
    ``say``: prints a warning line; ``log_name``: returns the log's path, for messages.
    """

    def __init__(self, limit: int, count: int, log: Callable[[list[dict]], None] | None,
                 say: Callable[[str], None], log_name: Callable[[], str], world_size: int = 1):
        self.limit, self.count = limit, count
        self.log, self.say, self.log_name = log, say, log_name
        self.world_size = world_size
        self._pending: list[dict[str, Any]] = []
        self._warned: set[str] = set()
        self.last: dict[str, Any] | None = None

    def add(self, batch: dict, exchange: bool) -> str | None:
        """Take ``batch``'s records of replaced samples; returns why training must stop, or None.

        ``exchange``: whether the processes gather their records at this step (every process must pass
        the same value); ignored with one process, which settles every step.
        """
        self._pending += batch.get("bad", [])
        if batch.get("incomplete"):  # this process alone is past the limit: stop now, whatever the others
            self._settle(self._pending, going_on=False)
            return self._why(batch["step"], incomplete=True)
        if self.world_size > 1 and not exchange:
            return None
        records = self._pending
        if self.world_size > 1:
            import torch.distributed as dist

            shares: list[Any] = [None] * self.world_size
            dist.all_gather_object(shares, records)
            records = sorted((r for share in shares for r in share), key=lambda r: (r["step"], r["sample"]))
        going_on = self.count + len(records) <= self.limit
        self._settle(records, going_on)
        return None if going_on else self._why(batch["step"])

    def _settle(self, records: list[dict], going_on: bool) -> None:
        """Count and log ``records``; warn about new files if training goes on (else the error says it)."""
        self._pending = []
        if not records:
            return
        self.count += len(records)
        self.last = records[-1]
        if self.log is None:
            return
        self.log(records)
        for r in records if going_on else []:
            if r["file"] in self._warned or len(self._warned) > SHOWN_FILES:
                continue
            self._warned.add(r["file"])
            if len(self._warned) > SHOWN_FILES:
                self.say(f"liv train: warning: more files cannot be read; each is logged to {self.log_name()}")
            else:
                self.say(f"liv train: warning: step {r['step']}: {r['file']}: {r['error']}; left the sample out "
                         f"and drew another (each is logged to {self.log_name()})")

    def _why(self, step: int, incomplete: bool = False) -> str:
        last = self.last or {"file": "?", "error": "?"}
        if self.limit == 0:
            return (f"step {step}: {last['file']}: {last['error']}; training stopped at this first unreadable "
                    f"sample (--max-bad-samples 0).")
        more = "at least " if incomplete else ""
        return (f"step {step}: {more}{self.count} samples could not be read, more than --max-bad-samples "
                f"{self.limit}; training stopped. The last: {last['file']}: {last['error']}. All are in "
                f"{self.log_name()}.")

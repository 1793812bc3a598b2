"""A run directory is never replaced by accident.

A directory holds a run when it has any of :data:`RUN_ENTRIES` (other files in it are not the run's and
are left alone). Training into it needs ``--resume`` (continue it) or ``--overwrite`` (start over).

With ``--overwrite`` the old run stays untouched until the new one has a complete checkpoint: until
then the new run writes into ``RUN/.liv-new-run/``. Then the old run is replaced in three steps whose
order lets the next start finish a replacement that a kill interrupted:

1. the old run's entries move into ``RUN/.liv-replaced.partial/``, renamed ``RUN/.liv-replaced/`` once
   all are there (so that name means: no entry of the old run is left in RUN);
2. the new run's entries move from ``.liv-new-run/`` into RUN, ``checkpoints`` last (so a complete
   checkpoint in ``.liv-new-run/`` means step 2 has not finished);
3. ``.liv-replaced/`` and ``.liv-new-run/`` are deleted.

A kill before the new run's first checkpoint leaves ``.liv-new-run/`` without one; the next start
deletes it, and the old run was never touched.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from liv.training.checkpointing import (MODEL_DIR, RUN_CONFIG_FILE, _fsync_dir, list_checkpoints,
                                       remove_partial_checkpoints)
from liv.training.errors import TrainingError
from liv.training.logs import DATA_ERRORS, EVAL, METRICS, TENSORBOARD

RUN_ENTRIES = ("checkpoints", MODEL_DIR, METRICS, EVAL, DATA_ERRORS, TENSORBOARD, RUN_CONFIG_FILE)
"""What a run writes into its directory."""
STAGING = ".liv-new-run"
REPLACED = ".liv-replaced"
_REPLACING = REPLACED + ".partial"


def run_entries(root: Path) -> list[str]:
    """The entries of a run (or of a replacement in progress) that ``root`` holds."""
    if not root.is_dir():
        return []
    return [name for name in (*RUN_ENTRIES, STAGING, REPLACED, _REPLACING) if (root / name).exists()]


def settled(root: Path, name: str) -> Path:
    """Where the run's entry ``name`` (one of :data:`RUN_ENTRIES`) is, with a replacement that a kill
    interrupted counted as the next start will settle it (:meth:`RunDir.prepare`): what a process reads
    before that start belongs to the run the start continues."""
    staging, replacing = root / STAGING, root / _REPLACING
    if list_checkpoints(staging) or (root / REPLACED).exists():  # the new run takes the place of the old
        return staging / name if (staging / name).exists() else root / name
    return replacing / name if (replacing / name).exists() else root / name  # the old run is put back


def check_out(root: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an ``--out`` that training must not write into; reads only, so every process can call it.

    Raises ValueError (one line; a usage error, exit status 2) when ``root`` is an existing file, or holds
    a run and neither ``resume`` nor ``overwrite`` is given.
    """
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} is a file; give a directory for the run (it is created if missing)")
    found = [name for name in run_entries(root) if name in RUN_ENTRIES] or run_entries(root)
    if found and not (resume or overwrite):
        raise ValueError(f"--out {root} already holds a run ({', '.join(found)}); --resume continues it, "
                         "--overwrite starts a new one (the old run is deleted once the new one has its "
                         "first checkpoint)")


@dataclass
class RunDir:
    """Where a run writes: ``current`` is ``root``, or ``root/.liv-new-run`` while ``replacing`` (an
    --overwrite run before its first checkpoint)."""

    root: Path
    replacing: bool = False
    notes: list[str] = field(default_factory=list)
    """What preparing the directory did, for the user."""

    @property
    def current(self) -> Path:
        return self.root / STAGING if self.replacing else self.root

    @classmethod
    def prepare(cls, root: Path, overwrite: bool) -> RunDir:
        """Create ``root`` if needed, finish or undo a replacement a kill interrupted, delete what a kill
        while saving left, and with ``overwrite`` on a run, start the replacement (main process only;
        call :func:`check_out` first). Raises TrainingError when ``root`` cannot be created."""
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrainingError(f"--out {root}: cannot create the directory ({e.strerror or e})") from None
        run = cls(root)
        if (root / STAGING).exists() or (root / REPLACED).exists() or (root / _REPLACING).exists():
            run.notes.append(_recover(root))
        remove_partial_checkpoints(root)
        if overwrite and run_entries(root):
            run.replacing = True
            run.current.mkdir()
            run.notes.append(f"--overwrite: the run in {root} stays until this one has its first checkpoint, "
                             f"which then replaces it (this run writes into {run.current} until then)")
        return run

    def commit(self) -> None:
        """After the first checkpoint (in ``current``) is complete: replace the old run by this one."""
        if self.replacing:
            _replace(self.root)
            self.replacing = False


def _replace(root: Path) -> None:
    """Steps 1-3 of the module docstring, each skipped where a previous, killed call has done it."""
    staging, replaced, replacing = root / STAGING, root / REPLACED, root / _REPLACING
    if not replaced.exists():
        replacing.mkdir(exist_ok=True)
        for name in RUN_ENTRIES:
            if (root / name).exists():
                os.rename(root / name, replacing / name)
        os.rename(replacing, replaced)
        _fsync_dir(root)
    if staging.exists():
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "checkpoints"):
            os.rename(entry, root / entry.name)
    _fsync_dir(root)
    shutil.rmtree(replaced)
    shutil.rmtree(staging, ignore_errors=True)


def _recover(root: Path) -> str:
    """Finish a replacement that had begun (the new run had a checkpoint), or drop the files of an
    --overwrite run killed before its first checkpoint; returns what was done."""
    staging, replacing = root / STAGING, root / _REPLACING
    if list_checkpoints(staging) or (root / REPLACED).exists():
        _replace(root)
        return f"finished replacing the run in {root} by the --overwrite run interrupted after its first checkpoint"
    if replacing.exists():  # step 1 begun without a new checkpoint: not done by liv; put the old run back
        for entry in replacing.iterdir():
            if not (root / entry.name).exists():
                os.rename(entry, root / entry.name)
        shutil.rmtree(replacing)
    shutil.rmtree(staging, ignore_errors=True)
    return (f"deleted {staging}: the files of an --overwrite run stopped before its first checkpoint "
            f"(the run in {root} was not touched)")

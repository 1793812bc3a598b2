"""Convert EPIC-KITCHENS-100 action annotations into a frame-folder manifest (the LIV pre-training data).

Input: an annotations CSV such as ``EPIC_100_train.csv`` (one row per narrated action segment, with
``narration_id, participant_id, video_id, narration, start_frame, stop_frame, verb, noun``, ...;
frame numbers are 1-based and inclusive) and the extracted RGB frames
``FRAMES/<participant_id>/rgb_frames/<video_id>/frame_0000000001.jpg`` (the first frame is number 1).

Output: a CSV that :func:`liv.data.frame_folders.read_frame_folders` reads, one episode per segment:
``directory`` (the video's frame folder, relative to the manifest when it lies under the manifest's
folder, else absolute), ``num_frames = stop_frame - start_frame + 1``, ``text`` (the narration),
``start_frame`` (episode frame i is file number ``start_frame + i``), ``frame_pattern``
(``frame_{:010d}.jpg``), plus ``narration_id, participant_id, video_id, verb, noun``.

Episodes cover exactly the files [start_frame, stop_frame]. The reference LIV data loader reads file
number ``start_frame + i + 1`` for segment frame i, one frame late: it never reads the annotated
first frame and reads one past ``stop_frame``. We follow the annotation, so frames differ from the
reference's by that one-frame shift.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from liv.data.episodes import DataError
from liv.data.manifests import csv_rows, header_row, line_where, numbered

FRAME_PATTERN = "frame_{:010d}.jpg"
"""File name of frame number n (1-based) in an EPIC-KITCHENS rgb_frames folder."""
REQUIRED_COLUMNS = ("narration_id", "participant_id", "video_id", "narration", "start_frame", "stop_frame",
                    "verb", "noun")
OUTPUT_COLUMNS = ("directory", "num_frames", "text", "start_frame", "frame_pattern", "narration_id",
                  "participant_id", "video_id", "verb", "noun")
_SHOWN = 20  # missing-file messages printed by the command before summarising


@dataclass
class ConversionReport:
    """What a conversion kept and dropped."""

    out: Path
    """The manifest written."""
    kept: int = 0
    """Segments written to the manifest."""
    dropped: Counter = field(default_factory=Counter)
    """Segments left out, by reason: "shorter than min_frames", "verb", "noun", "participant", "missing frames"."""
    missing: list[str] = field(default_factory=list)
    """One message per segment with missing frame files, naming the CSV line and the file."""

    @property
    def total(self) -> int:
        """Rows read from the annotations."""
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        """One line: kept of total, and the drops by reason."""
        drops = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items()))
        return f"wrote {self.out}: kept {self.kept} of {self.total} segments" + (f"; dropped {drops}" if drops else "")


def _read_annotations(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line, row) for each record of the annotations CSV (line: 1-based, where the record starts, see
    :func:`liv.data.manifests.numbered`); checks the header."""
    with csv_rows(path, "annotations file") as reader:
        header = header_row(reader, path)
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(str(path), f"missing column(s) {', '.join(missing)}; is this an EPIC-KITCHENS-100 "
                                       f"annotations file? The header has {', '.join(header)}")
        rows = []
        for n, values in numbered(reader):
            if len(values) != len(header):
                raise DataError(line_where(path, n), f"has {len(values)} fields but the header has {len(header)}")
            rows.append((n, dict(zip(header, values))))
    return rows


def _frame_number(row: dict[str, str], column: str, where: str) -> int:
    raw = row[column].strip()
    if not raw.isdigit() or int(raw) < 1:
        raise DataError(where, f"{column} {raw!r} is not a frame number (an integer >= 1)")
    return int(raw)


def _directory_text(directory: Path, manifest_dir: Path) -> str:
    """How the manifest names a frame folder: relative if it lies under the manifest's folder."""
    # abspath, not resolve: a frames folder linked into the manifest's folder stays relative.
    directory, manifest_dir = Path(os.path.abspath(directory)), Path(os.path.abspath(manifest_dir))
    try:
        return directory.relative_to(manifest_dir).as_posix()
    except ValueError:
        return str(directory)


def _normalise(values: Sequence[str] | None) -> set[str] | None:
    return None if not values else {v.strip().lower() for v in values}


def convert_epic_kitchens(annotations: str | os.PathLike[str], frames_root: str | os.PathLike[str],
                          out: str | os.PathLike[str], min_frames: int = 3, verbs: Sequence[str] | None = None,
                          nouns: Sequence[str] | None = None, participants: Sequence[str] | None = None,
                          check_files: bool = True) -> ConversionReport:
    """Write a frame-folder manifest for the EPIC-KITCHENS-100 segments in ``annotations`` -> report.

    ``out``: the manifest CSV (an existing folder means ``out/manifest.csv``). Segments are kept in
    CSV order when they have at least ``min_frames`` frames and, for each filter given, their
    ``verb`` / ``noun`` / ``participant_id`` is in ``verbs`` / ``nouns`` / ``participants``
    (compared case-insensitively). ``check_files``: segments whose first or last frame file is
    absent are reported in ``report.missing`` with their CSV line and left out. A malformed CSV or
    record raises DataError naming the file and line.
    """
    annotations, frames_root, out = Path(annotations), Path(frames_root), Path(out)
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1, got {min_frames}")
    if check_files and not frames_root.is_dir():
        raise DataError(str(frames_root), "frames folder not found (expected <participant_id>/rgb_frames/<video_id>/)")
    out = out / "manifest.csv" if out.is_dir() else out
    report = ConversionReport(out=out)
    verb_set, noun_set, who = _normalise(verbs), _normalise(nouns), _normalise(participants)
    records = []
    for n, row in _read_annotations(annotations):
        where = line_where(annotations, n)
        start, stop = _frame_number(row, "start_frame", where), _frame_number(row, "stop_frame", where)
        if stop < start:
            raise DataError(where, f"stop_frame {stop} is before start_frame {start}")
        num_frames = stop - start + 1
        reason = ("shorter than min_frames" if num_frames < min_frames
                  else "participant" if who is not None and row["participant_id"].strip().lower() not in who
                  else "verb" if verb_set is not None and row["verb"].strip().lower() not in verb_set
                  else "noun" if noun_set is not None and row["noun"].strip().lower() not in noun_set
                  else None)
        directory = frames_root / row["participant_id"].strip() / "rgb_frames" / row["video_id"].strip()
        if reason is None and check_files:
            absent = [directory / FRAME_PATTERN.format(k) for k in (start, stop)
                      if not (directory / FRAME_PATTERN.format(k)).is_file()]
            if absent:
                reason = "missing frames"
                report.missing.append(f"{where} (narration_id {row['narration_id']}): missing "
                                      f"{' and '.join(map(str, absent))}")
        if reason is not None:
            report.dropped[reason] += 1
            continue
        records.append([_directory_text(directory, out.parent), num_frames, row["narration"], start, FRAME_PATTERN,
                        row["narration_id"], row["participant_id"], row["video_id"], row["verb"], row["noun"]])
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(OUTPUT_COLUMNS)
        writer.writerows(records)
    os.replace(partial, out)  # a reader never sees a half-written manifest
    report.kept = len(records)
    return report


# ---------------------------------------------------------------------------------- command line

@dataclass
class EpicKitchensArgs:
    """Convert EPIC-KITCHENS-100 annotations and extracted frames into a frame-folder manifest for training."""

    annotations: Path = field(metadata={"path": "file"})
    """Annotations CSV, e.g. EPIC_100_train.csv (columns narration_id, participant_id, video_id, narration,
    start_frame, stop_frame, verb, noun, ...)."""
    frames: Path = field(metadata={"path": "dir"})
    """Root of the extracted RGB frames: <frames>/<participant_id>/rgb_frames/<video_id>/frame_0000000001.jpg."""
    out: Path = field(metadata={"path": "out"})
    """Manifest CSV to write (an existing folder means <out>/manifest.csv); frame folders under its folder are
    written relative to it."""
    min_frames: int = field(default=3, metadata={"min": 1})
    """Leave out segments with fewer frames than this (pre-training samples need at least 3)."""
    verbs: list[str] = field(default_factory=list)
    """Keep only segments with these verbs (the CSV's verb column, e.g. open close); none given keeps all."""
    nouns: list[str] = field(default_factory=list)
    """Keep only segments with these nouns (the CSV's noun column, e.g. drawer tap); none given keeps all."""
    participants: list[str] = field(default_factory=list)
    """Keep only these participants (e.g. P01 P02); none given keeps all."""
    check_files: bool = True
    """Check that each segment's first and last frame files exist; segments missing them are listed and left out."""


def run_epic_kitchens(args: EpicKitchensArgs) -> int:
    """Run the conversion and print its summary; exit status 1 when no segment was kept."""
    report = convert_epic_kitchens(args.annotations, args.frames, args.out, min_frames=args.min_frames,
                                   verbs=args.verbs, nouns=args.nouns, participants=args.participants,
                                   check_files=args.check_files)
    for message in report.missing[:_SHOWN]:
        print(message)
    if len(report.missing) > _SHOWN:
        print(f"... and {len(report.missing) - _SHOWN} more segments with missing frame files")
    print(report.summary())
    return 0 if report.kept else 1

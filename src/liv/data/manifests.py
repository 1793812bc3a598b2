"""CSV manifests: the file that lists a dataset's episodes, one record each, shared by the CSV-based readers
(frame folders, video files, EPIC-KITCHENS annotations).

Every problem is a DataError naming the file, and the line where there is one: ``<path> line N`` is the
1-based line of the file as an editor shows it (the header is line 1 unless blank lines precede it), the
line where the record starts when a quoted text spans several lines.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from liv.data.episodes import DataError

MANIFEST_NAME = "manifest.csv"
"""The manifest's file name inside a dataset folder."""


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """The manifest file for ``path``: the path itself, or ``path/manifest.csv`` for a directory."""
    p = Path(path)
    p = p / MANIFEST_NAME if p.is_dir() else p
    if not p.is_file():
        raise DataError(str(p), "manifest not found")
    return p


Row = dict[str, str] | str
"""A manifest record: {column: value}, or why it could not be split into the header's columns."""


def read_manifest(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, Row]]]:
    """Header and records of a CSV manifest -> (column names, [(line, row)]).

    ``line`` is the 1-based line of the file where the record starts (see :func:`numbered`; blank lines
    are skipped). Raises DataError naming the file for an unreadable file, an empty file (see
    :func:`read_header`) or a missing required column, and naming the line for text that is not UTF-8.
    A record with the wrong number of fields is returned as a message, so that :func:`collect_rows` can
    report it with its line.
    """
    with csv_rows(path, "manifest") as reader:
        columns = header_row(reader, path)
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(str(path), f"missing required column(s) {', '.join(missing)}; the header has "
                                       f"{', '.join(repr(c) for c in columns)} (needs {', '.join(required)})")
        rows: list[tuple[int, Row]] = []
        for line, values in numbered(reader):
            row = (dict(zip(columns, values)) if len(values) == len(columns) else
                   f"has {len(values)} fields but the header has {len(columns)}")
            rows.append((line, row))
    return columns, rows


def numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) for each record a ``csv.reader`` has not read yet, blank lines skipped.

    ``line`` is the 1-based line of the file where the record starts, as an editor numbers it: a quoted
    text over several lines is one record and the next record's line counts all of them (the reader's
    ``line_num``, which counts lines read, not records).
    """
    read = reader.line_num
    for values in reader:
        start, read = read + 1, reader.line_num
        if values:
            yield start, values


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file (its first line that is not blank, names stripped).

    Raises DataError naming the file when it is empty (0 bytes, or only blank lines) or cannot be
    read, and naming the line when it is not UTF-8 text (:func:`not_utf8`).
    """
    with csv_rows(path, "file") as reader:
        return header_row(reader, path)


@contextmanager
def csv_rows(path: Path, what: str) -> Iterator[Iterator[list[str]]]:
    """``with csv_rows(path, "manifest") as reader``: a csv.reader over the UTF-8 file ``path`` (a BOM
    allowed). Inside the block, text that is not UTF-8, malformed CSV and an unreadable file become one
    DataError naming the file (and, for UTF-8, the line: :func:`not_utf8`)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            yield csv.reader(f)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except csv.Error as e:
        raise DataError(str(path), f"malformed CSV ({e})") from None
    except FileNotFoundError:
        raise DataError(str(path), f"{what} not found") from None
    except OSError as e:
        raise DataError(str(path), f"cannot read the {what} ({e.strerror or e})") from None


def header_row(reader: Iterable[list[str]], path: Path) -> list[str]:
    """The column names from a ``csv.reader`` of ``path``: its first record that is not blank, stripped.

    Raises DataError naming the file when there is none: it is empty (0 bytes, or only blank lines).
    """
    header = next((r for r in reader if any(c.strip() for c in r)), None)
    if header is None:
        # Said as it is: "no header" or "no columns" would send the user looking for a header that is wrong.
        what = "0 bytes" if path.stat().st_size == 0 else "only blank lines"
        raise DataError(str(path), f"the file is empty ({what})")
    return [c.strip() for c in header]


def not_utf8(path: Path) -> DataError:
    """A DataError naming the first line of CSV file ``path`` that is not UTF-8: ``<path> line L``, with
    `` (the header)`` when that line belongs to the header.

    Python's UnicodeDecodeError counts bytes from the start of a buffer of the file, not of the file,
    so the file is read again as bytes to find the place.
    """
    data = path.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        bad = start + e.start
    else:  # decodable as a whole: the file changed since it failed
        return DataError(str(path), "not UTF-8 text")
    # Lines end at \n, \r\n or a lone \r, as the csv reader (and editors) split them.
    breaks = list(re.finditer(rb"\r\n|\r|\n", data[:bad]))
    line_start = breaks[-1].end() if breaks else 0
    line = len(breaks) + 1
    # The header is the first record that is not blank. An odd number of quotes before the bad line means
    # the line continues the last record (a quoted text spanning lines), which is the header if it is the
    # only one.
    before = data[start:line_start].decode("utf-8")
    records = list(csv.reader(io.StringIO(before, newline="")))
    first = next((k for k, r in enumerate(records) if any(c.strip() for c in r)), None)
    continues = before.count('"') % 2 == 1
    header = first is None or (continues and first == len(records) - 1)
    where = line_where(path, line) + (" (the header)" if header else "")
    return DataError(where, f"not UTF-8 text (byte 0x{data[bad]:02x} at column {bad - line_start + 1}); "
                            f"save the file as UTF-8")


def line_where(path: Path, line: int) -> str:
    """How a place in a CSV file is named in messages: ``<path> line <line>`` (1-based, as editors count)."""
    return f"{path} line {line}"


def parse_int(row: dict[str, str], column: str, where: str, default: int | None = None, minimum: int = 0) -> int:
    """Integer value of ``row[column]`` (empty -> ``default``); DataError naming ``where`` and the column otherwise."""
    raw = (row.get(column) or "").strip()
    if not raw:
        if default is None:
            raise DataError(where, f"{column} is empty")
        return default
    try:
        value = float(raw)
        if not value.is_integer():
            raise ValueError
        value = int(value)
    except ValueError:
        raise DataError(where, f"{column} {raw!r} is not an integer") from None
    if value < minimum:
        raise DataError(where, f"{column} is {value}, must be >= {minimum}")
    return value


OUTCOME_COLUMN = "success"
"""The optional per-episode outcome column of frame-folder and video manifests (1/0, true/false, yes/no)."""
_OUTCOMES = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False}


def parse_outcome(row: dict[str, str], where: str) -> bool | None:
    """The episode's ``success`` label (1/0, true/false, yes/no in any case; empty or no column -> None).

    Raises DataError naming ``where`` for any other value, so that a typo never counts a failure as a success."""
    raw = (row.get(OUTCOME_COLUMN) or "").strip()
    if not raw:
        return None
    try:
        return _OUTCOMES[raw.lower()]
    except KeyError:
        raise DataError(where, f"{OUTCOME_COLUMN} {raw!r} must be 1 or 0 (or true/false, yes/no)") from None


def collect_rows(rows: Iterable[tuple[int, Row]], path: Path, build, errors: list[DataError] | None) -> list:
    """Apply ``build(line, row, where)`` to every well-formed record of :func:`read_manifest`; a bad one
    (malformed, or ``build`` raising DataError) raises, or, when ``errors`` is a list, is appended to it and
    skipped."""
    out = []
    for n, row in rows:
        where = line_where(path, n)
        try:
            if isinstance(row, str):
                raise DataError(where, row)
            out.append(build(n, row, where))
        except DataError as e:
            if errors is None:
                raise
            errors.append(e)
    return out

"""CSV manifests: the file that lists a dataset's episodes, one row each, shared by the CSV-based readers
(frame folders, video files, EPIC-KITCHENS annotations).

Every problem is a DataError naming the file, and the row where there is one: ``<path> row N`` counts
data records after the header, 1-based (blank lines skipped, a quoted multi-line text one row).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

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
"""A manifest row: {column: value}, or why it could not be split into the header's columns."""


def read_manifest(path: Path, required: Sequence[str]) -> tuple[list[str], list[tuple[int, Row]]]:
    """Header and rows of a CSV manifest -> (column names, [(data row number, row)]).

    Row numbers are 1-based and count data records after the header (blank lines are skipped, a
    quoted multi-line text is one row). Raises DataError naming the file for an unreadable file, an
    empty file (see :func:`read_header`) or a missing required column, and naming the row and line
    for text that is not UTF-8. A row with the wrong number of fields is returned as a message, so
    that :func:`collect_rows` can report it with its number.
    """
    with csv_rows(path, "manifest") as reader:
        columns = header_row(reader, path)
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(str(path), f"missing required column(s) {', '.join(missing)}; the header has "
                                       f"{', '.join(repr(c) for c in columns)} (needs {', '.join(required)})")
        rows: list[tuple[int, Row]] = []
        for values in reader:
            if values:
                row = (dict(zip(columns, values)) if len(values) == len(columns) else
                       f"has {len(values)} fields but the header has {len(columns)}")
                rows.append((len(rows) + 1, row))
    return columns, rows


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
    DataError naming the file (and, for UTF-8, the row and line: :func:`not_utf8`)."""
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
    """A DataError naming the first place in CSV file ``path`` that is not UTF-8: ``<path> row N (line L)``
    (data rows as :func:`read_manifest` counts them), or ``<path> line 1 (the header)``.

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
    line_start = data.rfind(b"\n", 0, bad) + 1
    line = data.count(b"\n", 0, bad) + 1
    # Count the records before the bad line as read_manifest does: the header is the first record that is
    # not blank, each non-empty record after it a row. A quoted text spanning lines is one record, and an
    # odd number of quotes before the line means the line continues the last record.
    before = data[start:line_start].decode("utf-8")
    records = list(csv.reader(io.StringIO(before, newline="")))
    header = next((k for k, r in enumerate(records) if any(c.strip() for c in r)), None)
    rows_before = 0 if header is None else sum(1 for r in records[header + 1:] if r)
    continues = before.count('"') % 2 == 1
    row = 0 if header is None else rows_before + (0 if continues else 1)
    where = f"{path} line {line} (the header)" if row == 0 else f"{row_where(path, row)} (line {line})"
    return DataError(where, f"not UTF-8 text (byte 0x{data[bad]:02x} at column {bad - line_start + 1}); "
                            f"save the file as UTF-8")


def row_where(path: Path, n: int) -> str:
    """How a manifest row is named in messages: ``<path> row <n>``."""
    return f"{path} row {n}"


def parse_int(row: dict[str, str], column: str, where: str, default: int | None = None, minimum: int = 0) -> int:
    """Integer value of ``row[column]`` (empty -> ``default``); DataError naming the row and column otherwise."""
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


def collect_rows(rows: Iterable[tuple[int, Row]], path: Path, build, errors: list[DataError] | None) -> list:
    """Apply ``build(n, row, where)`` to every well-formed row; a bad row (malformed, or ``build``
    raising DataError) raises, or, when ``errors`` is a list, is appended to it and skipped."""
    out = []
    for n, row in rows:
        where = row_where(path, n)
        try:
            if isinstance(row, str):
                raise DataError(where, row)
            out.append(build(n, row, where))
        except DataError as e:
            if errors is None:
                raise
            errors.append(e)
    return out

"""Check a dataset before training: statistics plus every problem, each with its file and line.

Problems are collected, never raised: a missing or corrupt frame, a truncated video, a frame count
that disagrees with the manifest, an empty or over-long text, an episode too short to sample, a
malformed manifest record. Places in a CSV manifest are its 1-based lines (header = line 1), as an
editor numbers them; places in a parquet table are rows, said to be 0-based. ``liv data check`` is the
command-line face of :func:`check_path`.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from liv.data.episodes import DataError, Episode, EpisodeDataset, name_some

if TYPE_CHECKING:  # numpy is imported where used, so that `liv data check --help` starts fast
    import numpy as np

Severity = Literal["error", "warning"]
_CHUNK = 64  # frames per read when decoding whole episodes of sources without validate()


@dataclass
class Problem:
    """One problem found in a dataset."""

    where: str
    """The place: manifest file and line (``manifest.csv line 4``, 1-based, header = line 1), a LeRobot
    file and its line or 0-based row, or the file alone."""
    message: str
    """What is wrong, naming the frame or video file concerned."""
    severity: Severity = "error"
    """"error" (training would fail or learn from wrong data) or "warning" (suspicious)."""

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


@dataclass
class CheckReport:
    """Statistics of a dataset and the problems found in it."""

    root: str
    """Where the dataset was read from."""
    format: str
    """Reader format name ("frames", "video", "lerobot", ...)."""
    episodes: int = 0
    """Number of episodes read (bad manifest records are not counted)."""
    frames: int = 0
    """Total frames over the episodes whose length could be determined."""
    texts: int = 0
    """Number of distinct texts."""
    length_min: int | None = None
    """Shortest episode, frames."""
    length_median: float | None = None
    """Median episode length, frames."""
    length_max: int | None = None
    """Longest episode, frames."""
    frame_sizes: dict[str, int] = field(default_factory=dict)
    """Decoded frame size "WxH" (pixels) -> number of episodes with that size."""
    decoded_frames: int = 0
    """Frames decoded by the check."""
    full: bool = False
    """Whether every frame was decoded."""
    problems: list[Problem] = field(default_factory=list)
    """Every problem found, in dataset order."""

    @property
    def errors(self) -> list[Problem]:
        """Problems of severity "error"."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems of severity "warning"."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict:
        """JSON-ready dict of every field, plus ``ok`` and the error/warning counts."""
        out = asdict(self)
        out.update(ok=self.ok, num_errors=len(self.errors), num_warnings=len(self.warnings))
        return out

    def format_text(self, max_problems: int = 200) -> str:
        """Human-readable summary; lists up to ``max_problems`` problems (JSON output has them all)."""
        lines = [f"{self.root} ({self.format}): {self.episodes} episodes, {self.frames} frames, "
                 f"{self.texts} distinct texts"]
        if self.length_min is not None:
            lines.append(f"  episode length  min {self.length_min}, median {self.length_median:g}, "
                         f"max {self.length_max} frames")
        if self.frame_sizes:
            sizes = ", ".join(f"{s} px in {_count(n, 'episode')}" for s, n in
                              sorted(self.frame_sizes.items(), key=lambda kv: -kv[1]))
            lines.append(f"  frame size      {sizes}")
        lines.append(f"  decoded         {self.decoded_frames} frames "
                     f"({'every frame' if self.full else 'first, last and random frames per episode; --full decodes all'})")
        if self.problems:
            lines.append(f"{_count(len(self.errors), 'error')}, {_count(len(self.warnings), 'warning')}:")
            lines += [f"  {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                lines.append(f"  ... and {len(self.problems) - max_problems} more (--json lists them all)")
        lines.append("OK: no errors." if self.ok else f"FAILED: {_count(len(self.errors), 'error')}.")
        return "\n".join(lines)


def check_dataset(dataset: EpisodeDataset, decode_frames: int = 3, full: bool = False, context_length: int = 77,
                  min_frames: int = 2, seed: int = 0, row_errors: Iterable[DataError] = (),
                  progress: bool = False) -> CheckReport:
    """Check every episode of ``dataset`` -> CheckReport (problems collected, not raised).

    Per episode: the text (empty; ``count_tokens(text) + 2 > context_length``), the length
    (``< min_frames``), the source's own ``validate(full)`` when it has one (files present, counts
    agreeing with the manifest, timing that can be indexed, and with ``full`` every frame decoded), and
    a decode of frame 0, the last frame and random others up to ``decode_frames`` in all (seeded by
    ``seed``; frames 0 and last even when ``decode_frames`` is 1) — or of every frame when ``full``.
    ``row_errors`` are manifest records a reader skipped (see ``open_dataset(errors=...)``).
    """
    import numpy as np

    from liv.models.tokenizer import count_tokens

    report = CheckReport(root=dataset.root, format=dataset.format, episodes=len(dataset), full=full,
                         texts=len(dataset.texts))
    report.problems += [Problem(e.where, e.problem) for e in row_errors]
    rng = np.random.default_rng(seed)
    tokens: dict[str, int] = {}
    lengths: list[int] = []
    short: list[str] = []
    sizes: Counter[str] = Counter()
    episodes: Iterable[Episode] = dataset
    if progress:
        from tqdm import tqdm

        episodes = tqdm(dataset, desc="checking episodes", unit="episode", file=sys.stderr)
    for episode in episodes:
        where = episode.source
        if not episode.text.strip():
            report.problems.append(Problem(where, "empty text"))
        else:
            if episode.text not in tokens:
                tokens[episode.text] = count_tokens(episode.text)
            n = tokens[episode.text]
            if n + 2 > context_length:
                report.problems.append(Problem(where, f"text is {n} tokens; with its start and end tokens that exceeds "
                                                      f"the context length {context_length}: {_clip(episode.text)!r}"))
        try:
            length = len(episode)
        except Exception as e:  # any reader: report the episode as unreadable and go on
            report.problems.append(Problem(where, _describe(e)))
            continue
        lengths.append(length)
        if length < min_frames:
            short.append(where)
            # A warning: training leaves such an episode out (an empty one too) and goes on.
            report.problems.append(Problem(where, f"{episode.frames.describe()}: only {_count(length, 'frame')}; sampling "
                                                  f"needs at least {min_frames}, so training leaves it out", "warning"))
        validated = _validate(episode, full, report)
        if full and validated is not None:
            # validate(full=True) decoded every frame and reported every problem; one frame gives the size.
            report.decoded_frames += length
            size = _decode(episode, [0] if length else [], report, quiet=True, count=False)
        else:
            indices = list(range(length)) if full else _sample(length, decode_frames, rng)
            # Errors validate() already reported (missing files) would be reported again by the decode.
            size = _decode(episode, indices, report, quiet=bool(validated))
        if size is not None:
            sizes[size] += 1
    report.frames = sum(lengths)
    if lengths:
        report.length_min, report.length_max = min(lengths), max(lengths)
        report.length_median = float(np.median(lengths))
    report.frame_sizes = dict(sizes)
    if not len(dataset) and not report.problems:
        report.problems.append(Problem(dataset.root, "no episodes"))
    elif lengths and max(lengths) < min_frames:
        report.problems.append(Problem(dataset.root, f"no episode has the {min_frames} frames that sampling needs: "
                                                     f"all {len(lengths)} are shorter ({name_some(short)})"))
    return report


def _validate(episode: Episode, full: bool, report: CheckReport) -> list[str] | None:
    """Run the source's validate(full) if it has one -> its errors (None when it has none)."""
    validate = getattr(episode.frames, "validate", None)
    if validate is None:
        return None
    try:
        messages = validate(full)
    except Exception as e:  # a validate() must not raise, but a foreign source might
        messages = [_describe(e)]
    errors = []
    for m in messages:
        if m.startswith("warning: "):
            report.problems.append(Problem(episode.source, m.removeprefix("warning: "), "warning"))
        else:
            report.problems.append(Problem(episode.source, m))
            errors.append(m)
    return errors


def _sample(length: int, count: int, rng: np.random.Generator) -> list[int]:
    """Frame 0 and the last frame (what every fine-tuning sample reads, and where an unindexable start or a
    truncated file fails) plus random others up to ``count`` frames in all, sorted (none if ``count`` <= 0)."""
    if length <= 0 or count <= 0:
        return []
    ends = {0, length - 1}
    inner = length - len(ends)
    others = rng.choice(inner, size=min(max(0, count - len(ends)), inner), replace=False) + 1 if inner > 0 else []
    return sorted(ends | set(map(int, others)))


def _decode(episode: Episode, indices: list[int], report: CheckReport, quiet: bool, count: bool = True) -> str | None:
    """Decode ``indices`` (chunked), recording problems unless ``quiet`` -> frame size "WxH" or None."""
    size = None
    for start in range(0, len(indices), _CHUNK):
        chunk = indices[start:start + _CHUNK]
        try:
            frames = episode.frames.read(chunk)  # the report adds the manifest line itself
        except Exception:
            # Read frame by frame so that every bad frame is named, not only the first.
            for i in chunk:
                try:
                    size = _size(episode.frames.read([i]), episode, report) or size
                    report.decoded_frames += count
                except Exception as e:
                    if not quiet:
                        report.problems.append(Problem(episode.source, _describe(e)))
            continue
        size = _size(frames, episode, report) or size
        report.decoded_frames += len(chunk) * count
    return size


def _size(frames: np.ndarray, episode: Episode, report: CheckReport) -> str | None:
    import numpy as np

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        report.problems.append(Problem(episode.source, f"{episode.frames.describe()}: the reader returned "
                                                       f"{frames.shape} {frames.dtype}, not (K, H, W, 3) uint8"))
        return None
    return f"{frames.shape[2]}x{frames.shape[1]}" if len(frames) else None


def _describe(e: Exception) -> str:
    return str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_path(path: str | Path, format: str = "auto", camera: str | None = None, text: str | None = None,
               **check_options) -> CheckReport:
    """Open the dataset at ``path`` (see ``open_dataset``) and check it -> CheckReport.

    A dataset that cannot be opened at all (no manifest, missing column, unknown format) gives a
    report with that one error; bad manifest records are reported one by one, each with its line.
    """
    from liv.data.open import open_dataset

    row_errors: list[DataError] = []
    try:
        dataset = open_dataset(path, format=format, camera=camera, text=text, errors=row_errors)  # type: ignore[arg-type]
    except (DataError, OSError) as e:
        report = CheckReport(root=str(path), format=format)
        report.problems.append(Problem(e.where, e.problem) if isinstance(e, DataError) else Problem(str(path), _describe(e)))
        return report
    return check_dataset(dataset, row_errors=row_errors, **check_options)


@dataclass
class DataCheckArgs:
    """Check a dataset before training: counts, lengths, frame sizes, and every problem with its file and line
    (a CSV manifest's 1-based line, header = line 1, as an editor shows it)."""

    path: Path = field(metadata={"positional": True, "path": "exists"})
    """Dataset: a manifest.csv or the folder holding it, a LeRobot root, a video file, or a folder of images."""
    format: Literal["auto", "frames", "video", "lerobot"] = "auto"
    """Dataset format; auto detects it from the files."""
    camera: str | None = None
    """LeRobot only: the camera (image key) to read."""
    text: str | None = None
    """Annotation of a single video file or folder of images (other formats carry their own texts)."""
    full: bool = False
    """Decode every frame (slow) instead of a sample per episode."""
    decode_frames: int = field(default=3, metadata={"min": 0})
    """Frames decoded per episode without --full: the first and the last (what fine-tuning reads) plus random
    others up to this count (0: none)."""
    min_frames: int = field(default=2, metadata={"min": 1})
    """Warn about episodes shorter than this, which training leaves out (fine-tuning samples need 2 frames,
    segment pre-training 3)."""
    context_length: int = field(default=77, metadata={"min": 3})
    """Text context length of the model; longer texts are reported."""
    seed: int = field(default=0, metadata={"min": 0})
    """Seed of the random sample of frames decoded."""
    json: bool = False
    """Print the report as JSON instead of text."""


def run_data_check(args: DataCheckArgs) -> int:
    """Run `liv data check`: print the report (text or JSON) -> exit status 0 if no errors, else 1."""
    report = check_path(args.path, format=args.format, camera=args.camera, text=args.text,
                        decode_frames=args.decode_frames, full=args.full, context_length=args.context_length,
                        min_frames=args.min_frames, seed=args.seed, progress=not args.json and sys.stderr.isatty())
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return 0 if report.ok else 1

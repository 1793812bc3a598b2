"""`liv reward`'s figure and animation: each goal's similarity and reward on axes of their own.

A text goal's cosine similarities span a few hundredths around 0.2 while an image goal's sit near 0.9:
on one shared y axis both look flat. So every goal gets its own row, similarity S(t) on the left and the
potential-based reward S(t+1) - S(t) on the right, all rows sharing the time axis; each axis is titled
with its goal, which replaces a legend that would cover the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from liv.eval.figures import new_figure, png_bytes, short_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from liv.data.episodes import Episode

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def episode_title(episode: Episode, root: str, index: int, single: bool) -> str:
    """How a person names an episode: the video file (or image folder) name for a lone input, else the
    dataset's folder name with the episode's index and where it is declared (a manifest row; LeRobot's own
    ``episode_index`` and camera instead of an internal chunk path)."""
    name = Path(root).name or str(root)
    if single:
        return name
    if episode.meta.get("episode_index") is not None:  # LeRobot
        camera = episode.meta.get("camera")
        return f"{name} (LeRobot) episode {episode.meta['episode_index']}" + (f", camera {camera}" if camera else "")
    source = episode.source
    prefix = str(root).rstrip("/\\") + os.sep
    return f"{name} episode {index} ({source[len(prefix):] if source.startswith(prefix) else source})"


def frame_strip(read: Callable[[list[int]], np.ndarray], num_frames: int, count: int = 6) -> np.ndarray:
    """``count`` evenly spaced frames side by side with thin white gaps -> (h, ~count*w, 3) uint8."""
    picks = np.unique(np.linspace(0, num_frames - 1, count).round().astype(int))
    frames = np.asarray(read(picks.tolist()))
    gap = np.full((frames.shape[1], max(2, frames.shape[2] // 40), 3), 255, np.uint8)
    return np.concatenate([p for f in frames for p in (f, gap)][:-1], axis=1)


def _as_array(values: Any) -> np.ndarray:
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)


def reward_figure(times: Any, curves: Mapping[str, Any], title: str, text: str = "",
                  ylabel: str = "similarity S", strip: np.ndarray | None = None, width_in: float = 12.0) -> Figure:
    """The figure of :func:`plot_reward_figure` (an Agg figure, for tests and other pages).

    Axes are in row order: per goal, its similarity axis (gid ``"similarity"``) then its reward axis (gid
    ``"reward"``), after the frame strip's axis (gid ``"strip"``) when ``strip`` is given. The plotted
    curves carry gids ``"similarity:<label>"`` and ``"reward:<label>"``.
    """
    from matplotlib.ticker import FuncFormatter

    t = _as_array(times)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"the time axis must be a non-empty (N,) array, got shape {t.shape}")
    values = {}
    for label, v in curves.items():
        values[label] = _as_array(v)
        if values[label].shape != t.shape:
            raise ValueError(f"curve {label!r} has shape {values[label].shape}, the time axis {t.shape}")
    if not values:
        raise ValueError("no curve to plot")
    strip_in = 0.0 if strip is None else min(2.4, 0.92 * width_in * strip.shape[0] / strip.shape[1])
    row_in = 2.0
    head_in = 0.7 if text else 0.45
    fig = new_figure(width_in, head_in + strip_in + row_in * len(values) + 0.55)
    # Constrained layout makes room for every title, tick label and the suptitle, so nothing overlaps.
    fig.set_layout_engine("constrained", h_pad=0.06, hspace=0.04, wspace=0.03)
    heights = ([strip_in] if strip is not None else []) + [row_in] * len(values)
    grid = fig.add_gridspec(len(heights), 2, height_ratios=heights, width_ratios=[1.55, 1])
    if strip is not None:
        ax = fig.add_subplot(grid[0, :], gid="strip")
        ax.imshow(strip)
        ax.set_axis_off()
    first = len(heights) - len(values)
    shared = None
    step = t[:-1]  # reward of the step leaving frame t, drawn from t to t+1
    for g, (label, v) in enumerate(values.items()):
        colour = COLOURS[g % len(COLOURS)]
        s_ax = fig.add_subplot(grid[first + g, 0], gid="similarity", sharex=shared)
        shared = shared or s_ax
        r_ax = fig.add_subplot(grid[first + g, 1], gid="reward", sharex=shared)
        s_ax.plot(t, v, color=colour, linewidth=1.6, gid=f"similarity:{label}")
        s_ax.set_title(short_label(label, 60), loc="left", fontsize=9, color=colour)
        s_ax.set_title(f"{v[0]:.4f} \u2192 {v[-1]:.4f} (\u0394 {v[-1] - v[0]:+.3g})", loc="right",
                       fontsize=8, color="#555")
        s_ax.set_ylabel(ylabel, fontsize=8)
        r = v[1:] - v[:-1]
        r_ax.axhline(0.0, color="#888", linewidth=0.8)
        if r.size:
            r_ax.stairs(r, t, baseline=0.0, fill=True, color=colour, alpha=0.25, linewidth=0)  # t to t+1
            r_ax.plot(step, r, drawstyle="steps-post", color=colour, linewidth=1.0, gid=f"reward:{label}")
            r_ax.set_title(f"negative in {np.mean(r < 0):.0%} of {r.size} steps", loc="right", fontsize=8,
                           color="#555")
        r_ax.set_title("reward S(t+1) \u2212 S(t)", loc="left", fontsize=9, color=colour)
        # Tick labels carry their own digits: an offset ("+9.9e-1") or a multiplier ("1e-6") drawn above
        # an axis is easy to misread and collides with its title.
        s_ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        r_ax.yaxis.set_major_formatter(FuncFormatter(_compact))
        for ax in (s_ax, r_ax):
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if g < len(values) - 1:
                ax.tick_params(labelbottom=False)
            else:
                ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(title + (f"\n\u201c{short_label(text, 110)}\u201d" if text else ""), fontsize=11)
    return fig


def _compact(x: float, _: Any = None) -> str:
    """A number in at most 3 significant digits (``0.0125``, ``-5e-07``), zero as ``0``."""
    return "0" if x == 0 else f"{x:.3g}"


def plot_reward_figure(times: Any, curves: Mapping[str, Any], path: str | os.PathLike, title: str, text: str = "",
                       ylabel: str = "similarity S", strip: np.ndarray | None = None) -> Path:
    """Write a PNG (1200 px wide) of each goal's similarity and LIV reward over time, one row per goal.

    ``times`` is (N,) seconds; ``curves`` maps a goal label (the row's title, e.g. ``text: "open the
    drawer"``) to its (N,) similarities (NumPy, torch or list); the reward is their difference from frame t
    to t+1. ``title`` names the episode and ``text`` its task; ``strip`` is an optional (h, w, 3) uint8
    row of frames (:func:`frame_strip`) drawn above. Raises ValueError for a curve whose length is not N.
    Returns the path written.
    """
    fig = reward_figure(times, curves, title, text=text, ylabel=ylabel, strip=strip)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig))
    return path


def animation_size(num_goals: int) -> tuple[int, int]:
    """(width, height) in pixels of :func:`write_reward_animation`'s frames: 1000 x 400 up to two goals,
    140 px taller per further goal (even numbers, as H.264's 4:2:0 sampling needs)."""
    return 1000, 400 + 140 * max(0, num_goals - 2)


def animation_figure(times: np.ndarray, curves: Mapping[str, np.ndarray], title: str = "",
                     ylabel: str = "similarity S") -> Figure:
    """The still part of :func:`write_reward_animation`'s frames, :func:`animation_size` pixels.

    ``fig.axes[0]`` (gid ``"frame"``) is for the video frame; then one axes per goal (gid ``"similarity"``),
    fixed to the goal's full (N,) curve range and titled with its label, holding an empty animated line and
    dot (``ax.lines[0]``, ``ax.lines[1]``) that each frame fills in up to its time.
    """
    t = np.asarray(times, dtype=np.float64)
    width, height = animation_size(len(curves))
    fig = new_figure(width / 100, height / 100)
    # Constrained layout (applied when the first frame draws the figure) keeps titles and tick labels clear
    # of each other and of the frame; later frames only blit, so the layout stays fixed.
    fig.set_layout_engine("constrained", h_pad=0.05, w_pad=0.05)
    grid = fig.add_gridspec(max(1, len(curves)), 2, width_ratios=[1, 1.4])
    image_ax = fig.add_subplot(grid[:, 0], gid="frame")
    image_ax.set_axis_off()
    axes: list[Any] = []
    for g, (label, v) in enumerate(curves.items()):
        v = np.asarray(v, dtype=np.float64)
        if v.shape != t.shape:
            raise ValueError(f"curve {label!r} has shape {v.shape}, the time axis {t.shape}")
        colour = COLOURS[g % len(COLOURS)]
        ax = fig.add_subplot(grid[g, 1], gid="similarity", sharex=axes[0] if axes else None)
        # animated=True keeps these out of the static background; they are blitted per frame.
        ax.plot([], [], color=colour, linewidth=1.8, animated=True, gid=f"similarity:{label}")
        ax.plot([], [], "o", color=colour, markersize=5, animated=True)
        pad = 0.05 * (v.max() - v.min()) or 0.01
        ax.set_ylim(v.min() - pad, v.max() + pad)
        ax.set_title(short_label(label, 60), loc="left", fontsize=9, color=colour)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(alpha=0.3)
        if g < len(curves) - 1:
            ax.tick_params(labelbottom=False)
        axes.append(ax)
    if axes:
        axes[0].set_xlim(t[0], t[-1] if t[-1] > t[0] else t[0] + 1)
        axes[-1].set_xlabel("time (s)", fontsize=8)
        fig.align_ylabels(axes)
    fig.suptitle(title, fontsize=10)
    return fig


def write_reward_animation(read_frames: Any, num_frames: int, times: np.ndarray, curves: Mapping[str, np.ndarray],
                           path: str | os.PathLike, fps: float, title: str = "", ylabel: str = "similarity S",
                           progress: bool = False) -> Path:
    """Animate a video beside its growing similarity curves, one axis per goal: one output frame per input frame.

    Args:
        read_frames: function ``indices -> (K, H, W, 3) uint8`` (e.g. ``Episode.read``); called in chunks
            so that a long video is never decoded whole.
        num_frames: N, the number of frames.
        times: (N,) x axis (seconds).
        curves: goal label -> (N,) values; each goal's axis is fixed to its curve's full range and titled with
            the label, and each frame draws the curves up to its own time.
        path: ``.mp4`` (H.264 via PyAV, streamed) or ``.gif`` (Pillow; holds every frame in memory).
        fps: playback rate, frames per second.

    Output frames are :func:`animation_size` pixels. Returns ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{path}: the animation must be .mp4 or .gif")
    t = np.asarray(times, dtype=np.float64)
    values = {k: np.asarray(v, dtype=np.float64) for k, v in curves.items()}
    width, height = animation_size(len(values))
    fig = animation_figure(t, values, title=title, ylabel=ylabel)
    image_ax, axes = fig.axes[0], fig.axes[1:]
    lines, dots = [ax.lines[0] for ax in axes], [ax.lines[1] for ax in axes]
    canvas: Any = fig.canvas
    image = None
    background = None

    def render(i: int, frame: np.ndarray) -> np.ndarray:
        # Axes, ticks and titles are drawn once; each frame restores them and redraws only what moves,
        # which is ~20x cheaper than a full redraw.
        nonlocal image, background
        if image is None:
            image = image_ax.imshow(frame, animated=True)
            canvas.draw()
            background = canvas.copy_from_bbox(fig.bbox)
        canvas.restore_region(background)
        image.set_data(frame)
        image_ax.draw_artist(image)
        for ax, line, dot, v in zip(axes, lines, dots, values.values()):
            line.set_data(t[: i + 1], v[: i + 1])
            dot.set_data(t[i: i + 1], v[i: i + 1])
            ax.draw_artist(line)
            ax.draw_artist(dot)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def rendered():
        from tqdm.auto import tqdm

        with tqdm(total=num_frames, desc="animate", unit="frame", disable=None if progress else True) as bar:
            for start in range(0, num_frames, 64):
                chunk = read_frames(list(range(start, min(start + 64, num_frames))))
                for k, frame in enumerate(chunk):
                    yield render(start + k, frame)
                    bar.update()

    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        from PIL import Image

        # Fast octree quantisation per frame: Pillow's default (median cut) is ~30x slower at this size.
        pictures = [Image.fromarray(f).quantize(256, method=Image.Quantize.FASTOCTREE) for f in rendered()]
        pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=max(20, round(1000 / fps)),
                         loop=0, disposal=1)
        return path
    import av
    from fractions import Fraction

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(100_000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}  # plots compress easily; speed matters more
        for frame in rendered():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path

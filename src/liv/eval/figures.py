"""matplotlib figures without pyplot (the object API on the Agg canvas: no global state, no display)
and their PNG form, on their own or as an HTML ``<img>`` with the image inline (base64)."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    """An empty figure of ``width_in`` x ``height_in`` inches at ``dpi``, attached to an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure rendered as PNG file contents, at the figure's own dpi."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()


def png_img_tag(png: bytes, alt: str) -> str:
    """An HTML ``<img>`` showing PNG file contents inline (a base64 data URI), so a page is one file."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def img_tag(fig: Figure, alt: str) -> str:
    """:func:`png_img_tag` of the figure rendered as PNG."""
    return png_img_tag(png_bytes(fig), alt)


def short_label(text: str, n: int = 32) -> str:
    """``text`` cut to at most ``n`` characters, an ellipsis marking the cut (for titles and legends)."""
    return text if len(text) <= n else text[: n - 1] + "\u2026"

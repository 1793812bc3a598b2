"""Image files -> 8-bit RGB frames, by one explicit rule per Pillow mode.

Every image liv reads from a file (frame folders, a folder of images, LeRobot image features in
parquet, ``liv embed --images``, ``liv reward --goal-image``) goes through :func:`image_to_rgb`, so a
16-bit or 32-bit image is scaled, or refused, the same way everywhere. Pillow's own
``convert("RGB")`` is not used for those modes because it clips every value above 255 to white.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np
from PIL import Image

from liv.data.episodes import DataError

_EIGHT_BIT = frozenset({"1", "L", "P", "RGB", "RGBA", "RGBX", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV"})
_PREMULTIPLIED = {"RGBa": "RGBA", "La": "LA"}  # premultiplied alpha -> straight alpha
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Formats whose mode "I" images hold unsigned 16-bit samples: PNG has no deeper integer samples (some
# Pillow versions open 16-bit grey PNGs as "I"), and Pillow's PPM reader scales maxval > 255 to 65535.
_I_HOLDS_16_BIT = frozenset({"PNG", "PPM"})
_PHOTOMETRIC, _WHITE_IS_ZERO = 262, 0  # TIFF tag PhotometricInterpretation; 0: 0 is white (grey images)


def image_to_rgb(im: Image.Image, where: str) -> np.ndarray:
    """An opened Pillow image -> (H, W, 3) uint8 RGB array (a new, writable array).

    Rules, by ``im.mode``:

    - 8-bit modes "1", "L", "P", "RGB", "RGBX", "RGBA", "LA", "PA", "CMYK", "YCbCr", "LAB", "HSV":
      Pillow's own conversion to RGB ("1" -> 0 or 255; "P"/"PA" through the palette; "CMYK" and
      "YCbCr" by Pillow's formulas; "LAB" as CIE L*a*b* -> sRGB). Embedded ICC profiles are ignored.
      Alpha is dropped, not composited: every pixel keeps the colour it stores, even where it is
      fully transparent. Premultiplied "RGBa"/"La" are first divided by alpha (as "RGBA"/"LA").
    - 16-bit grey "I;16", "I;16L", "I;16B", "I;16N" (unsigned, 0..65535): the high byte, ``x >> 8``,
      repeated to 3 channels (after ``65535 - x`` for a TIFF whose PhotometricInterpretation is
      WhiteIsZero, which Pillow inverts for 8-bit samples only). Why the high byte rather than ``round(x * 255 / 65535)``: Pillow itself
      reduces 16-bit colour and grey+alpha PNGs to 8 bits by the high byte when it opens them (it has
      no 16-bit RGB mode), so one rule makes a frame read the same whether it was saved as 16-bit grey
      or 16-bit colour; both rules map the usual 8 -> 16-bit expansion ``v * 257`` back to ``v`` and
      differ by at most one level. Values are scaled by the container's bit depth, not by the data's
      range: 12-bit data stored in 16 bits reads dark, as other viewers show it.
    - "I" (32-bit signed): 16-bit samples when ``im.format`` is "PNG" or "PPM" (see above), then as
      "I;16" if every value is in [0, 65535]. From any other source (a TIFF of 32-bit or signed
      integers, an image made in memory) the value range is unknown, so it is refused, not guessed.
    - "F" (32-bit float) and any other mode: refused; floats carry no range to scale from.

    Colour images deeper than 8 bits never reach this function at full depth: Pillow opens 16-bit
    RGB/RGBA/LA PNGs as 8-bit "RGB"/"RGBA" by the high byte, and 16-bit PPMs by rounding (within one
    level of the high byte). Nothing is clipped.

    ``where`` names the image (its file) in errors. Raises DataError(where, problem naming the mode)
    for a refused image; Pillow's own errors (a truncated file, ...) propagate, as the pixels are
    decoded here.
    """
    mode = im.mode
    if mode in _SIXTEEN_BIT:
        values = np.asarray(im)
        if im.format == "TIFF" and getattr(im, "tag_v2", {}).get(_PHOTOMETRIC) == _WHITE_IS_ZERO:
            values = 65535 - values.astype(np.int32)  # Pillow inverts 8-bit WhiteIsZero TIFFs, not 16-bit ones
        return _grey16_to_rgb(values)
    if mode == "I":
        if im.format not in _I_HOLDS_16_BIT:
            source = f"a {im.format} file" if im.format else "this image"
            raise DataError(where, f"image mode 'I' (signed or 32-bit integers) in {source} has no known value range, "
                                   "so it cannot be scaled to 8 bits; save it with unsigned 8 or 16 bits per channel")
        values = np.asarray(im)
        lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise DataError(where, f"image mode 'I' ({im.format}) has values in [{lo}, {hi}], outside the 16-bit "
                                   "range [0, 65535] its format allows; refusing to clip them")
        return _grey16_to_rgb(values)
    if mode in _PREMULTIPLIED:
        im = im.convert(_PREMULTIPLIED[mode])
    elif mode == "P" and "transparency" in im.info:
        # Pillow warns when a palette image with transparency goes straight to RGB; via RGBA the
        # colours are the same and alpha is then dropped like any other.
        im = im.convert("RGBA")
    if im.mode not in _EIGHT_BIT:
        kind = "32-bit float" if mode == "F" else "unsupported"
        raise DataError(where, f"image mode {mode!r} ({kind}) has no rule for scaling to 8-bit RGB; "
                               "save it with 8 or 16 bits per channel")
    return np.array(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)


def _grey16_to_rgb(values: np.ndarray) -> np.ndarray:
    grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def read_image(file: str | os.PathLike[str] | BinaryIO, where: str | None = None) -> np.ndarray:
    """Decode one image file (a path, or an open binary file) -> (H, W, 3) uint8 RGB by :func:`image_to_rgb`.

    ``where`` names the image in errors (default: the path). Raises FileNotFoundError if the path
    does not exist, and DataError(where, problem) if the file cannot be decoded or its mode is refused.
    """
    where = str(file) if where is None else where
    try:
        with Image.open(file) as im:
            return image_to_rgb(im, where)
    except (FileNotFoundError, DataError):
        raise
    except Exception as e:  # Pillow signals corrupt data with many types (OSError, SyntaxError, zlib.error, ...)
        raise DataError(where, f"cannot decode image ({type(e).__name__}: {e})") from None

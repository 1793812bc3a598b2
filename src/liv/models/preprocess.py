"""Image preprocessing with torch ops: frames -> normalised, resized, centre-cropped pixels.

The input contract is explicit (no guessing from values): frames are channels-last RGB, either
``uint8`` in [0, 255] or floating point in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def as_frame_tensor(frames: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Validate frames and return them as a (N, H, W, 3) tensor on ``device`` with the input's dtype.

    Accepts (H, W, 3) or (N, H, W, 3), uint8 or float in [0, 1], NumPy or torch.
    Raises TypeError for other dtypes and ValueError for other shapes or out-of-range floats.
    """
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a numpy array or torch tensor, got {type(frames).__name__}")
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) or (H, W, 3) RGB, channels last; got shape "
                         f"{tuple(frames.shape)}")
    if frames.dtype != torch.uint8 and frames.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"frames must be uint8 in [0, 255] or float in [0, 1]; got dtype {frames.dtype}")
    if frames.dtype in _FLOAT_DTYPES and frames.numel():
        lo, hi = float(frames.min()), float(frames.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"float frames must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                             "pass uint8 frames or divide by 255")
    return frames.to(device) if device is not None else frames


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) after scaling the shorter side to ``size`` px, keeping the aspect ratio.

    The longer side is truncated, not rounded (torchvision's ``Resize(int)`` rule), so that our
    crops line up pixel-for-pixel with the reference's.
    """
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def to_float_nchw(frames: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Frames (see :func:`as_frame_tensor`) -> (N, 3, H, W) float32 in [0, 1] on ``device``.

    uint8 frames are moved before conversion (4x less traffic to an accelerator).
    """
    x = as_frame_tensor(frames, device).permute(0, 3, 1, 2)
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def resize_center_crop(x: torch.Tensor, resolution: int, antialias: bool = True) -> torch.Tensor:
    """(N, 3, H, W) float -> (N, 3, resolution, resolution): bilinear resize of the shorter side, centre crop.

    ``antialias=True`` low-pass filters when shrinking (PIL's and torchvision's current default); the
    reference LIV resized tensors with ``antialias=None``, i.e. without it.
    """
    h, w = x.shape[-2:]
    new_h, new_w = resized_shape(h, w, resolution)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=antialias)
    top = int(round((new_h - resolution) / 2.0))
    left = int(round((new_w - resolution) / 2.0))
    return x[..., top:top + resolution, left:left + resolution]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] -> CLIP-normalised (x - mean) / std, same shape, contiguous."""
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def preprocess(frames: np.ndarray | torch.Tensor, resolution: int, *, antialias: bool = True,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Frames -> (N, 3, resolution, resolution) float32 pixels ready for the image tower.

    Scale to [0, 1] by dtype, resize the shorter side and centre-crop (:func:`resize_center_crop`),
    then CLIP mean/std normalisation.
    """
    return normalize(resize_center_crop(to_float_nchw(frames, device), resolution, antialias))

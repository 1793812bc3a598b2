"""MuJoCo helpers shared by every simulation suite: fast upright offscreen rendering, exact state save/restore.

On a software OpenGL renderer (this project's CPU machines) shadows, reflections and multisampling cost
7-14x the frame time and change nothing a 64-224 px policy input needs, so :class:`Camera` switches
them off. MuJoCo chooses its OpenGL backend when first imported; :func:`import_mujoco` picks headless
EGL unless the user chose one (``MUJOCO_GL``).
"""

from __future__ import annotations

import atexit
import os
import sys
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np

GL_NOTE = ""
"""Why rendering may fail: set when mujoco was imported before MUJOCO_GL could be chosen."""


def choose_gl() -> None:
    """Set MUJOCO_GL=egl (headless) unless the user set it; call before mujoco is first imported."""
    global GL_NOTE
    if "MUJOCO_GL" not in os.environ:
        if "mujoco" in sys.modules:
            GL_NOTE = "mujoco was imported before liv could choose EGL, so it uses its default (GLFW); "
        os.environ["MUJOCO_GL"] = "egl"


# Live environments, closed at exit before MuJoCo terminates EGL (else their finalizers print errors).
_LIVE: weakref.WeakSet = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def track(env: Any) -> None:
    """Close ``env`` (it has a ``close()``) at interpreter exit if it is still open then."""
    _LIVE.add(env)


def untrack(env: Any) -> None:
    _LIVE.discard(env)


def _close_live() -> None:
    for env in list(_LIVE):
        env.close()


def save_physics(mujoco, model, data) -> np.ndarray:
    """MuJoCo's full integration state (mjSTATE_INTEGRATION) -> float64 copy, for bit-identical restores."""
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    physics = np.empty(mujoco.mj_stateSize(model, spec), dtype=np.float64)
    mujoco.mj_getState(model, data, physics, spec)
    return physics


def restore_physics(mujoco, model, data, physics: np.ndarray) -> None:
    """Restore :func:`save_physics` output; stepping on continues exactly as after the save."""
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    mujoco.mj_setState(model, data, physics, spec)
    mujoco.mj_forward(model, data)  # positions of bodies and sites, for observations and rendering
    # mj_forward overwrites the solver's warm start (qacc_warmstart); put the saved one back, or the
    # next step's constraint solve starts elsewhere and drifts by ~1e-16.
    mujoco.mj_setState(model, data, physics, spec)


def prepare_model(model, size: tuple[int, int]) -> None:
    """Switch multisampling off and make the offscreen buffer hold (height, width) px; before any render.

    Multisampling is fixed when the GL context is made, so it must be off before the renderer exists."""
    height, width = size
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, int(width))
    model.vis.global_.offheight = max(model.vis.global_.offheight, int(height))


class Camera:
    """One camera of a scene rendered offscreen at (height, width) px -> upright (H, W, 3) uint8 frames.

    ``camera``: the name of a camera in the model, or a free camera given as {"lookat": (x, y, z) m,
    "distance": m, "azimuth": degrees, "elevation": degrees}; ``flip``: the named camera's images come
    out of MuJoCo rotated by 180 degrees (turn them upright); ``label``: names the scene in errors.
    Created lazily by the environments (the GL context exists from the first render).
    """

    def __init__(self, mujoco, model, size: tuple[int, int], camera: str | Mapping[str, Any], flip: bool = False,
                 label: str = "scene"):
        self._mujoco, self.size, self.flip, self.label = mujoco, (int(size[0]), int(size[1])), flip, label
        try:
            self._renderer = mujoco.Renderer(model, self.size[0], self.size[1])
        except Exception as e:  # mujoco raises FatalError/RuntimeError/ImportError depending on the backend
            raise RuntimeError(f"cannot create a MuJoCo offscreen renderer ({e}); {GL_NOTE}"
                               "headless machines need MUJOCO_GL=egl (or osmesa) set before mujoco is first "
                               "imported (importing metaworld imports it): export MUJOCO_GL=egl") from e
        global _ATEXIT_REGISTERED
        if not _ATEXIT_REGISTERED:
            # MuJoCo registers eglTerminate at exit when it makes its first context (just now); hooks run
            # last-registered first, so envs left open are closed before EGL goes away.
            atexit.register(_close_live)
            _ATEXIT_REGISTERED = True
        # Scene flags survive update_scene(), so they are set once: no shadow or reflection passes.
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        if isinstance(camera, str):
            self._camera: Any = camera
        else:
            free = mujoco.MjvCamera()
            free.type = mujoco.mjtCamera.mjCAMERA_FREE
            free.lookat[:] = camera["lookat"]
            free.distance, free.azimuth, free.elevation = camera["distance"], camera["azimuth"], camera["elevation"]
            self._camera = free

    def render(self, data) -> np.ndarray:
        """The scene in ``data`` -> (H, W, 3) uint8 RGB, upright. Raises RuntimeError if all black."""
        self._renderer.update_scene(data, camera=self._camera)
        frame = self._renderer.render()
        if self.flip:
            frame = frame[::-1, ::-1]
        if not frame.any():
            # A GL context freed under us (e.g. by a dropped, unclosed renderer) renders black, silently.
            raise RuntimeError(f"{self.label}: rendered an all-black frame; the OpenGL context is broken (close "
                               "environments with env.close() before dropping them, or set MUJOCO_GL)")
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Free the OpenGL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

"""Rendering and stepping speed of the kitchen suite; prints one line of JSON.

For each frame size (default 64, 128, 224 px) and arm drawing (collision meshes, liv's default, and the
visual meshes, ``detailed_arm=True``), renders ``--frames`` frames of the ``overview`` camera while the arm
moves (one random joint-velocity step between frames, so the scene changes as in generation) and reports
frames/s of rendering alone, plus environment steps/s without rendering. Also measured against MuJoCo's
default rendering (shadows, reflections, 8x multisampling on) at 128 px, in the same run.

Target (issue #15): >= 30 frames/s at 128 px on a 2-core CPU with software OpenGL (MUJOCO_GL=egl).
Run: ``PYTHONPATH=src python bench/kitchen_render.py`` (about half a minute).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from liv.sim.kitchen.env import make_env


def render_fps(size: int, frames: int, detailed_arm: bool, task: str = "kitchen_micro_open") -> float:
    with make_env(task, 0, size=(size, size), detailed_arm=detailed_arm) as env:
        env.reset()
        env.render()  # the GL context is made on the first frame: not timed
        rng = np.random.default_rng(0)
        seconds = 0.0
        for _ in range(frames):
            env.step(rng.uniform(-0.3, 0.3, 9))
            t0 = time.perf_counter()
            env.render()
            seconds += time.perf_counter() - t0
    return frames / seconds


def mujoco_default_fps(size: int, frames: int) -> float:
    """Frames/s with MuJoCo's default scene flags and multisampling (the visual meshes)."""
    import mujoco

    with make_env("kitchen_micro_open", 0, size=(size, size), detailed_arm=True) as env:
        env.reset()
        env.model.vis.quality.offsamples = 8  # MuJoCo's default, before the renderer exists
        renderer = mujoco.Renderer(env.model, size, size)
        from liv.sim.kitchen.env import VIRTUAL_CAMERAS

        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        spec = VIRTUAL_CAMERAS["overview"]
        cam.lookat[:], cam.distance, cam.azimuth, cam.elevation = (spec["lookat"], spec["distance"], spec["azimuth"],
                                                                   spec["elevation"])
        renderer.update_scene(env.data, camera=cam)
        renderer.render()
        t0 = time.perf_counter()
        for _ in range(frames):
            renderer.update_scene(env.data, camera=cam)
            renderer.render()
        fps = frames / (time.perf_counter() - t0)
        renderer.close()
    return fps


def step_rate(steps: int) -> float:
    with make_env("kitchen_micro_open", 0) as env:
        env.reset()
        rng = np.random.default_rng(0)
        actions = rng.uniform(-0.3, 0.3, (steps, 9))
        t0 = time.perf_counter()
        for i, a in enumerate(actions):
            if i % env.max_steps == env.max_steps - 1:
                env.reset()
            env.step(a)
        return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    out = {"machine": platform.processor() or platform.machine(), "frames": args.frames,
           "fps": {str(s): round(render_fps(s, args.frames, False), 1) for s in args.sizes},
           "fps_detailed_arm": {str(s): round(render_fps(s, args.frames, True), 1) for s in args.sizes},
           "fps_mujoco_default_128": round(mujoco_default_fps(128, max(10, args.frames // 4)), 1),
           "steps_per_s": round(step_rate(200), 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

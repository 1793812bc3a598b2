"""`liv reproduce`: run the protocol (:mod:`liv.sim.reproduce.protocol`) and write the report.

The command line gives only the options typed (as `liv train` does), so that a scale's values sit
under them: :func:`~liv.sim.reproduce.config.build_reproduce_config`.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from typing import Any

from liv.sim.reproduce.config import ReproduceConfig, build_reproduce_config

ReproduceArgs = ReproduceConfig  # the command's options


def run_reproduce(given: dict[str, Any]) -> int:
    """Run `liv reproduce` with the explicitly given options -> exit status 0 (errors are raised)."""
    results = reproduce(build_reproduce_config(given))
    from liv.sim.reproduce.report import markdown

    print(markdown(results), end="")
    return 0


def reproduce(config: ReproduceConfig) -> dict[str, Any]:
    """Every stage of the protocol, cached under ``config.out`` -> the results (also in OUT/results.json)."""
    from liv.sim import rendering

    rendering.choose_gl()  # before anything imports mujoco
    from liv.sim.reproduce import protocol as p
    from liv.sim.reproduce.cells import CellStore
    from liv.sim.suite import get_suite

    t0 = time.perf_counter()
    suite = get_suite(config.suite)
    config.out.mkdir(parents=True, exist_ok=True)
    store = CellStore(config.out / "cells")
    data, data_key = p.prepare_data(config)
    reps = p.representations(config, data_key)
    p.train_models(config, reps, data, data_key)
    curves = _curves(config, store, reps, data, data_key)
    lcbc = p.lcbc_jobs(config, reps, data, data_key, suite)
    cells = p.plan_cells(config, reps)
    plans = p.plan_jobs(config, cells, p.training_env_seeds(data), suite)
    p._say(config, f"3-4/5 LCBC ({len(lcbc)} policies) and planning ({len(plans)} episodes)")
    done = p.run_cells(config, store, lcbc + plans)
    results = _assemble(config, suite, reps, cells, lcbc, plans, done, curves, data)
    results["wall_seconds"] = time.perf_counter() - t0
    from liv.sim.reproduce.report import claims, write_report

    results["claims"] = claims(results)
    png = None
    if curves:
        from liv.eval.figures import png_bytes
        from liv.sim.reproduce.curves import curves_figure

        png = png_bytes(curves_figure(curves))
    paths = write_report(results, config.out, png)
    p._say(config, f"5/5 wrote {', '.join(str(v) for v in paths.values())}")
    return results


def _curves(config, store, reps, data, data_key) -> dict[str, Any]:
    """Figure 6 curves of every representation (cached); embeds each one's frames into OUT/cache on the way,
    so the LCBC workers find them there."""
    import liv
    from liv.data.lerobot import read_lerobot
    from liv.sim.bc import embed_dataset
    from liv.sim.reproduce.cells import cell_key
    from liv.sim.reproduce.curves import value_curves

    dataset = read_lerobot(data)
    out = {}
    for rep in reps:
        settings = {"rep": rep.key, "data": data_key, "per_task": config.curves_episodes}
        key = cell_key("curves", settings)
        found = store.get("curves", key)
        if found is None:
            model = liv.load(rep.model, device=config.device if config.device != "auto" else "cpu")
            found = value_curves(embed_dataset(model, dataset, config.out / "cache"), config.curves_episodes)
            store.put("curves", key, settings, found)
        out[rep.label] = found
    return out


def _assemble(config, suite, reps, cells, lcbc, plans, done, curves, data) -> dict[str, Any]:
    from liv.sim.reproduce.report import summarise

    by_label: dict[str, dict[str, Any]] = {}
    grouped: dict[tuple[str, str], dict[str, list]] = {}
    for _, key, _, job in lcbc:
        result = done[key]
        slot = grouped.setdefault((job["label"], job["conditioning"]), {t: [] for t in config.tasks})
        for task in config.tasks:
            slot[task].append(result["tasks"][task])
    for (label, cond), per_task in grouped.items():
        by_label.setdefault(label, {})[cond] = summarise(per_task)
    planning = {}
    for cell in cells:
        per_task: dict[str, dict[int, list[bool]]] = {t: {} for t in config.tasks}
        for _, key, _, job in plans:
            if job["cell"] == cell["name"]:
                per_task[job["task"]].setdefault(job["seed"], []).append(done[key]["success"])
        summary = summarise({t: [v[s] for s in sorted(v)] for t, v in per_task.items()})
        rep = cell["rep"]
        planning[cell["name"]] = {**summary, "init": rep.init if rep else None,
                                  "objective": rep.objective if rep else None,
                                  "rep": rep.label if rep else "simulator reward (oracle)",
                                  "iterations": cell["iterations"], "goal": cell["goal"],
                                  "plan_seconds": _mean([s for _, k, _, j in plans if j["cell"] == cell["name"]
                                                         for s in done[k]["plan_seconds"]])}
    from liv.sim.reproduce.protocol import planner_settings

    settings = {**config.to_dict(), "data": str(data), "camera": config.camera or suite.default_camera,
                "bc_batch_size": config.bc_batch_size or suite.bc_batch_size,
                "bc_max_steps": config.bc_max_steps or suite.episode_steps,
                "plan_max_steps": config.plan_max_steps or suite.plan_steps,
                "planner_resolved": {k: v for k, v in planner_settings(config, 1, 0, 0).items() if k != "seed"},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()},
                "versions": {d: _version(d) for d in ("liv", "torch", "mujoco", "metaworld", "gymnasium-robotics")}}
    return {"settings": settings,
            "representations": {r.label: {"init": r.init, "objective": r.objective, "model": r.model, "key": r.key}
                                for r in reps},
            "lcbc": by_label, "planning": planning, "curves": curves}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None

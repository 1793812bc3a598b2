"""`liv reproduce`: statistics against hand-computed values, cache keys, curves, claims, and a tiny run."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, chosen before mujoco is first imported

from liv.sim.reproduce import protocol as p  # noqa: E402
from liv.sim.reproduce.cells import CellStore, cell_key  # noqa: E402
from liv.sim.reproduce.config import build_reproduce_config, parse_init  # noqa: E402
from liv.sim.reproduce.curves import value_curves  # noqa: E402
from liv.sim.reproduce.stats import ordering, rollouts_for_half_width, success_cell, wilson_interval  # noqa: E402


def naive_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    phat = k / n
    centre = (phat + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (3, 27), (40, 48)])
def test_wilson_matches_the_formula(k, n):
    low, high = wilson_interval(k, n)
    ref = naive_wilson(k, n)
    assert low == pytest.approx(max(0.0, ref[0]), abs=1e-9) and high == pytest.approx(min(1.0, ref[1]), abs=1e-9)


def test_wilson_known_values_and_bad_counts():
    assert wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert wilson_interval(0, 10)[1] == pytest.approx(0.27753, abs=1e-5)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_success_cell_pools_rollouts_and_summarises_seeds():
    cell = success_cell([[True, False], [True, True, True, False]])
    assert (cell["successes"], cell["n"]) == (4, 6)
    assert cell["rate"] == pytest.approx(4 / 6)
    assert cell["per_seed"] == [0.5, 0.75]
    assert cell["mean"] == pytest.approx(0.625) and cell["std"] == pytest.approx(0.125)
    assert (cell["low"], cell["high"]) == pytest.approx(naive_wilson(4, 6))
    with pytest.raises(ValueError):
        success_cell([[], []])


def test_ordering_claims_only_separated_intervals():
    high = success_cell([[True] * 45 + [False] * 5])
    low = success_cell([[True] * 10 + [False] * 40])
    mid = success_cell([[True] * 40 + [False] * 10])
    assert ordering(high, low, "A", "B") == {"claim": "A > B", "separated": True, "difference": pytest.approx(0.7)}
    assert ordering(low, high, "A", "B")["claim"] == "B > A"
    assert ordering(high, mid, "A", "B")["claim"] == "A vs B: not separated"


def test_rollouts_for_ten_points():
    n = rollouts_for_half_width(0.10)
    assert max(0.5 - naive_wilson(n // 2, n)[0], naive_wilson(n // 2, n)[1] - 0.5) <= 0.10
    m = n - 2
    assert max(0.5 - naive_wilson(m // 2, m)[0], naive_wilson(m // 2, m)[1] - 0.5) > 0.10
    assert 90 <= n <= 100


def test_value_curves_average_resampled_cosines():
    # Episode 0 (3 frames) moves from orthogonal to the goal frame/text to equal; episode 1 failed (ignored).
    image = np.array([[0, 1], [1, 1], [1, 0], [5, 5], [5, 5]], np.float32)
    emb = {"image": image, "episode": np.array([0, 0, 0, 1, 1]), "text": np.array([[2, 0], [0, 3]], np.float32),
           "texts": np.array(["a", "b"]), "succeeded": np.array([True, False])}
    c = value_curves(emb, points=5)
    assert c["episodes"] == 1 and c["time"] == [0, 0.25, 0.5, 0.75, 1]
    half = 1 / math.sqrt(2)
    assert c["image"] == pytest.approx([0, half / 2, half, (half + 1) / 2, 1])
    assert c["text"] == pytest.approx(c["image"])
    emb["succeeded"] = np.array([False, False])
    with pytest.raises(ValueError, match="no successful"):
        value_curves(emb)


def test_cell_store_round_trip_and_unreadable_cells(tmp_path):
    store = CellStore(tmp_path)
    assert store.get("lcbc", "k1") is None
    store.put("lcbc", "k1", {"a": 1}, {"tasks": {"t": [True]}})
    assert store.get("lcbc", "k1") == {"tasks": {"t": [True]}}
    store.path("lcbc", "k1").write_text("{half")
    assert store.get("lcbc", "k1") is None
    assert cell_key("x", {"a": 1, "b": 2}) == cell_key("x", {"b": 2, "a": 1}) != cell_key("x", {"a": 1, "b": 3})


def _keys(tmp_path, **given):
    config = build_reproduce_config({"out": tmp_path, "tasks": ["drawer-open-v3", "drawer-close-v3"], **given})
    from liv.sim.suite import get_suite

    suite = get_suite("metaworld")
    reps = p.representations(config, "DATA")
    lcbc = {(j["label"], j["conditioning"], j["seed"]): k
            for _, k, _, j in p.lcbc_jobs(config, reps, tmp_path, "DATA", suite)}
    plan = {(j["cell"], j["task"], j["seed"], j["env_seed"]): k
            for _, k, _, j in p.plan_jobs(config, p.plan_cells(config, reps), [], suite)}
    return {r.label: r.key for r in reps}, lcbc, plan


def test_a_changed_setting_changes_exactly_its_dependants(tmp_path):
    models, lcbc, plan = _keys(tmp_path)
    assert list(models) == ["Random", "Random + LIV FT", "Random + CLIP FT", "Random + VIP-I FT"]
    assert len(lcbc) == 4 * 2 * 3 and len(set(lcbc.values())) == len(lcbc)
    # 3 rewards x 2 iteration counts + random goal + 2 oracles, 2 tasks x 3 seeds x 4 episodes each
    assert len(plan) == 9 * 2 * 3 * 4 and len(set(plan.values())) == len(plan)
    assert _keys(tmp_path) == (models, lcbc, plan)  # deterministic

    m2, l2, p2 = _keys(tmp_path, bc_steps=100)
    assert m2 == models and p2 == plan and all(l2[k] != lcbc[k] for k in lcbc)

    m3, l3, p3 = _keys(tmp_path, train_steps=50)
    fine_tuned = [label for label in models if label != "Random"]
    assert m3["Random"] == models["Random"] and all(m3[x] != models[x] for x in fine_tuned)
    for (label, *_), key in lcbc.items():
        assert (l3[(label, *_)] == key) == (label == "Random")
    for (cell, *rest), key in plan.items():
        untouched = cell.startswith("Random,") or cell.startswith("simulator")
        assert (p3[(cell, *rest)] == key) == untouched, cell

    _, l4, p4 = _keys(tmp_path, plan_samples=8)
    assert l4 == lcbc and all(p4[k] != plan[k] for k in plan)


def test_config_scales_and_init_labels(tmp_path):
    cpu = build_reproduce_config({"out": tmp_path})
    assert cpu.camera == "closeup" and cpu.planner == "cem" and cpu.bc_proprio is False
    assert cpu.tasks == ["drawer-open-v3", "drawer-close-v3", "faucet-open-v3", "faucet-close-v3"]
    assert cpu.init == ["clip-tiny"]
    paper = build_reproduce_config({"out": tmp_path, "scale": "paper", "suite": "kitchen"})
    assert (paper.planner, paper.plan_horizon, paper.plan_samples, paper.bc_hidden) == ("mppi", 50, 128, [256, 256])
    assert paper.bc_rollouts == 50 and paper.init == ["clip-rn50"] and paper.bc_proprio is True
    assert build_reproduce_config({"out": tmp_path, "scale": "paper", "plan_samples": 64}).plan_samples == 64
    assert parse_init("clip-tiny") == ("Random", "clip-tiny")
    assert parse_init("CLIP=/w/RN50.pt") == ("CLIP", "/w/RN50.pt")
    assert parse_init(str(tmp_path / "liv_epic")) == ("liv_epic", str(tmp_path / "liv_epic"))
    with pytest.raises(ValueError, match="kitchen_micro_open"):
        build_reproduce_config({"out": tmp_path, "tasks": ["kitchen_micro_open"]})


TINY = ["--tasks", "drawer-close-v3", "--episodes", "2", "--train-steps", "2", "--bc-steps", "5", "--bc-rollouts", "2",
        "--bc-seeds", "0", "--plan-episodes", "1", "--plan-seeds", "0", "--plan-samples", "4", "--plan-horizon", "3",
        "--plan-iterations", "1", "--plan-max-steps", "6", "--bc-max-steps", "8", "--objectives", "liv", "--size", "32",
        "--no-progress"]


def test_reproduce_end_to_end_then_resumes_from_its_cells(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("metaworld") is None:
        pytest.skip("needs the sim extra (metaworld)")
    from liv.cli import main
    from liv.sim.reproduce import units

    out = tmp_path / "rep"
    assert main(["reproduce", "--out", str(out), "--workers", "2", *TINY]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["lcbc"]) == {"Random", "Random + LIV FT"}
    text = results["lcbc"]["Random + LIV FT"]["text"]["average"]
    assert text["n"] == 2 and 0 <= text["low"] <= text["rate"] <= text["high"] <= 1
    assert set(results["planning"]) == {"Random, 1 it", "Random + LIV FT, 1 it", "Random + LIV FT, 1 it, random goal",
                                        "simulator reward (oracle), 1 it"}
    assert all(c["average"]["n"] == 1 for c in results["planning"].values())
    assert len(results["curves"]["Random + LIV FT"]["image"]) == 50
    assert {c["statement"] for c in results["claims"]} >= {"LIV fine-tuning beats the un-fine-tuned init for LCBC"}
    assert (out / "report.html").read_text().count("<table>") >= 4 and (out / "figure6.png").is_file()
    assert "Table 1" in (out / "tables.md").read_text() and "Table 1" in capsys.readouterr().out

    ran = []
    real = units.run_units
    monkeypatch.setattr(units, "run_units", lambda jobs, workers: (ran.extend(k for k, _, _ in jobs), real(jobs, 1))[1])
    assert main(["reproduce", "--out", str(out), *TINY]) == 0
    assert ran == []  # everything came from the cache
    assert json.loads((out / "results.json").read_text())["lcbc"] == results["lcbc"]
    assert main(["reproduce", "--out", str(out), *TINY, "--bc-steps", "6"]) == 0
    assert sorted(ran) == ["lcbc"] * 4  # the policies only: models, planning and curves are reused

"""The kitchen suite: success tests on hand-set joints, seeded starts, frames, state restore, errors, experts,
and generation, LCBC and planning end to end on tiny settings (slow where whole episodes are simulated)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, chosen before mujoco is first imported
pytest.importorskip("gymnasium_robotics")

from liv.data.lerobot import read_lerobot  # noqa: E402
from liv.sim.generate import generate_dataset  # noqa: E402
from liv.sim.kitchen.env import ARM_START_RANGE, make_env  # noqa: E402
from liv.sim.kitchen.tasks import GOALS, TASKS  # noqa: E402
from liv.sim.suite import get_suite, suite_of  # noqa: E402

SIZE = (48, 48)


def set_joint(env, joint: str, value: float) -> None:
    import mujoco

    env.data.qpos[env.model.jnt_qposadr[env.model.joint(joint).id]] = value
    mujoco.mj_forward(env.model, env.data)


# ------------------------------------------------------------------------------------------- quick

def test_suite_is_registered_with_the_papers_settings():
    suite = get_suite("kitchen")
    assert [suite.task_text(t) for t in suite.tasks] == ["open microwave", "slide cabinet", "open left door",
                                                         "turn on stove", "switch on light"]  # paper Table 4
    assert suite.action_dim == 9 and len(suite.state_names) == 9 and suite.step_seconds == 0.08
    assert suite.bc_batch_size == 32 and suite.plan_steps == 50 and suite.default_camera == "overview"
    assert suite_of(["kitchen_light_on"]).name == "kitchen"
    with pytest.raises(ValueError, match="different suites"):
        suite_of(["kitchen_light_on", "reach-v3"])


@pytest.mark.parametrize("task", list(TASKS))
def test_success_is_the_task_joint_past_its_goal(task):
    joint, goal = GOALS[task]
    with make_env(task, 0, size=SIZE) as env:
        env.reset()
        assert not env.is_success() and env.progress() < 0.05
        set_joint(env, joint, 0.9 * goal)  # most of the way: not done
        assert not env.is_success() and env.progress() == pytest.approx(0.9)
        set_joint(env, joint, 1.01 * goal)
        assert env.is_success() and env.progress() == 1.0
        assert env.object_states()[joint] == pytest.approx(1.01 * goal)
        # Another object's joint does not count for this task.
        other_task = next(t for t in TASKS if GOALS[t][0] != joint)
        set_joint(env, joint, 0.0)
        set_joint(env, GOALS[other_task][0], 1.01 * GOALS[other_task][1])
        assert not env.is_success()


def test_seeded_starts_reset_and_restore_exactly():
    with make_env("kitchen_sdoor_open", 3, size=SIZE) as a, make_env("kitchen_sdoor_open", 3, size=SIZE) as b, \
            make_env("kitchen_sdoor_open", 4, size=SIZE) as c:
        oa, ob, oc = a.reset(), b.reset(), c.reset()
        assert oa.shape == (59,) and np.array_equal(oa, ob) and not np.allclose(oa[:7], oc[:7])
        nominal = np.asarray(a._robot.init_qpos[:7])
        assert np.abs(oa[:7] - nominal).max() <= ARM_START_RANGE + 1e-12
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (6, 9))
        for x in actions[:3]:
            a.step(x)
        saved = a.get_state()
        for x in actions[3:]:
            after = a.step(x)[0]
        a.set_state(saved)
        for x in actions[3:]:
            again = a.step(x)[0]
        assert np.array_equal(after, again)  # bit-identical continuation
        assert np.array_equal(a.reset(), oa)  # reset restores the seeded start
        with pytest.raises(ValueError, match="9 values"):
            a.step(np.zeros(4))


@pytest.mark.parametrize("camera", ["overview", "closeup"])
def test_frames_are_upright_and_not_black(camera):
    with make_env("kitchen_micro_open", 0, camera=camera, size=(64, 64)) as env:
        env.reset()
        frame = env.render().astype(int)
        assert frame.shape == (64, 64, 3) and frame.reshape(-1, 3).max(0).min() > 0
        # The wall cabinets (blue-grey) fill the top of an upright frame; the counter the bottom.
        blue = frame[..., 2] - frame[..., 0]
        assert blue[:21].mean() > blue[-21:].mean() + 10
        env.step(np.full(9, 0.5))
        assert np.abs(env.render().astype(int) - frame).mean() > 0.5  # the arm moved on screen


def test_bad_names_give_one_clear_line():
    with pytest.raises(ValueError, match="cameras: overview, closeup"):
        make_env("kitchen_micro_open", 0, camera="top")
    with pytest.raises(ValueError, match="tasks: kitchen_micro_open"):
        make_env("kitchen_nope", 0)
    with pytest.raises(ValueError, match="annotation"):
        get_suite("kitchen").check_tasks(["kitchen_nope"])


def test_missing_gymnasium_robotics_names_what_to_install():
    code = ("import builtins, sys\n"
            "real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name.startswith('gymnasium_robotics'): raise ImportError('No module named gymnasium_robotics')\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "from liv.sim.kitchen.env import make_env\n"
            "try:\n    make_env('kitchen_micro_open', 0)\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.count("\n") == 1 and "pip install 'liv[sim]'" in out and "gymnasium-robotics" in out


def test_approach_actions_do_not_do_the_task():
    for task in TASKS:
        with make_env(task, 0, size=SIZE) as env:
            env.reset()
            actions = env.approach_actions()
            assert actions.ndim == 2 and actions.shape[1] == 9 and np.abs(actions).max() <= 1.0
            for a in actions:
                env.step(a)
            assert env.progress() < 0.3, task


# -------------------------------------------------------------------------------------------- slow

def expert_episode(task: str, seed: int) -> tuple[bool, int]:
    with make_env(task, seed, size=SIZE) as env:
        env.reset()
        for step in range(1, env.max_steps + 1):
            _, _, _, _, info = env.step(env.expert_action())
            if info["success"]:
                return True, step
    return False, env.max_steps


def test_a_seeded_expert_episode_succeeds():
    # An expert at 100% (tasks.TASKS); every task's measured rate is checked by the slow test below.
    success, steps = expert_episode("kitchen_light_on", 0)
    assert success and 36 <= steps <= 39


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASKS))
def test_experts_reach_their_table_rates(task):
    wins = [expert_episode(task, seed)[0] for seed in range(20)]
    assert np.mean(wins) == pytest.approx(TASKS[task].success_rate)  # the table is what the expert does


@pytest.fixture(scope="module")
def kitchen_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("kitchen") / "data"
    generate_dataset(["kitchen_sdoor_open"], 2, seed=0, out=out, size=SIZE, failures=1, record_every=2,
                     progress=False, suite="kitchen")
    return out


@pytest.mark.slow
def test_generated_kitchen_data_passes_the_check(kitchen_data):
    from liv.cli import main

    ds = read_lerobot(kitchen_data)
    assert len(ds) == 3 and ds.texts == ["slide cabinet"]
    info = json.loads((kitchen_data / "meta" / "info.json").read_text())
    assert info["robot_type"] == "franka" and info["features"]["action"]["shape"] == [9]
    assert info["features"]["observation.state"]["names"][0] == "panda_joint1"
    assert info["fps"] == round(1 / (0.08 * 2))
    record = json.loads((kitchen_data / "meta" / "liv_generation.json").read_text())
    assert record["request"]["suite"] == "kitchen" and "gymnasium_robotics" in json.dumps(record)
    for e, rec in zip(ds, record["episodes"]):
        assert e.actions.shape == (len(e), 9) and e.states.shape == (len(e), 9)
        assert e.succeeded == (rec["kind"] == "expert")
    assert main(["data", "check", str(kitchen_data)]) == 0


@pytest.mark.slow
def test_bc_and_plan_run_in_the_kitchen(kitchen_data, tmp_path):
    from liv.sim.commands import BCArgs, PlanArgs, run_bc_command, run_plan

    assert run_bc_command(BCArgs(data=kitchen_data, model=["clip-tiny"], out=tmp_path / "bc", seeds=[0], steps=5,
                                 hidden=[16], episodes=1, max_steps=2)) == 0
    result = json.loads((tmp_path / "bc" / "bc.json").read_text())
    assert set(result["rows"]) == {"clip-tiny (random init) (text)"}
    assert run_plan(PlanArgs(model=["clip-tiny"], tasks=["kitchen_sdoor_open"], episodes=1, out=tmp_path / "plan",
                             horizon=3, samples=4, iterations=1, max_steps=2, random_goal=True)) == 0
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert "kitchen" in json.dumps(plan)

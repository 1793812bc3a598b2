"""Behaviour cloning on frozen embeddings, reward-guided planning, their reports and commands.

The quick tests share one tiny generated dataset (2 tasks x 2 expert episodes at 64 px, ~10 s) and run
rollouts of a few steps; full-protocol and command-line runs are marked slow.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering, chosen before mujoco is first imported
pytest.importorskip("metaworld")

import liv  # noqa: E402
from liv.cli_args import add_dataclass_arguments, dataclass_from_args  # noqa: E402
from liv.data.lerobot import read_lerobot  # noqa: E402
from liv.sim.bc import (  # noqa: E402
    embed_dataset,
    eval_seeds,
    evaluate_policy,
    model_fingerprint,
    run_bc,
    train_policy,
    training_loss,
)
from liv.sim.commands import BCArgs, PlanArgs, resolve_rendering, run_bc_command, run_plan  # noqa: E402
from liv.sim.generate import generate_dataset, rendering_settings  # noqa: E402
from liv.sim.metaworld.env import TASKS, make_env  # noqa: E402
from liv.sim.planning import LIVScorer, PlannerConfig, StateScorer, run_episode, run_planning, score_candidates  # noqa: E402
from liv.sim.report import markdown_table, seed_summary, write_sim_report  # noqa: E402

TASK_PAIR = ["reach-v3", "handle-press-v3"]  # the experts' shortest episodes (<= 65 steps)
SIZE = (64, 64)
DATA_CAMERA, DATA_SIZE = "closeup", (48, 48)  # neither is a command's default, so taking them up is visible


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Small matrices: torch's extra threads only wait on cores that other jobs keep busy (15x slower).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("bc") / "data"
    generate_dataset(TASK_PAIR, 2, seed=0, out=out, camera=DATA_CAMERA, size=DATA_SIZE, max_steps=100,
                     record_every=2, progress=False)
    return out


@pytest.fixture(scope="module")
def model():
    return liv.create("clip-tiny")


@pytest.fixture(scope="module")
def embeddings(data, model, tmp_path_factory):
    return embed_dataset(model, read_lerobot(data), tmp_path_factory.mktemp("cache"))


# -------------------------------------------------------------------------------------------- report

def test_markdown_table_on_known_numbers():
    rows = {"LIV (text)": {"tasks": {"drawer-open-v3": seed_summary([0.5, 0.7]), "reach-v3": seed_summary([1.0])},
                           "average": seed_summary([0.75, 0.85])},
            "CLIP (one-hot)": {"tasks": {"drawer-open-v3": seed_summary([0.1, 0.1, 0.1])},
                               "average": {"mean": 0.1, "std": 0.0}}}
    table = markdown_table(rows, ["drawer-open-v3", "reach-v3"])
    assert table.splitlines() == [
        "| Representation | drawer-open | reach | Average |",
        "| --- | ---: | ---: | ---: |",
        "| LIV (text) | 60.0 ± 10.0 | 100.0 ± 0.0 | 80.0 ± 5.0 |",
        "| CLIP (one-hot) | 10.0 ± 0.0 | – | 10.0 ± 0.0 |",
    ]
    assert markdown_table(rows).splitlines()[0] == table.splitlines()[0]  # default columns: first-seen order


def test_write_sim_report(tmp_path):
    rows = {"m": {"tasks": {"reach-v3": seed_summary([np.float32(0.5)])}, "average": seed_summary([0.5]),
                  "extra": np.arange(2)}}
    json_path, md_path = write_sim_report(rows, tmp_path, "bc", "Title", notes=["a note"])
    assert json.loads(json_path.read_text())["rows"]["m"]["extra"] == [0, 1]
    text = md_path.read_text()
    assert text.startswith("# Title") and "| m | 50.0 ± 0.0 | 50.0 ± 0.0 |" in text and "- a note" in text


# ------------------------------------------------------------------------------------------- BC quick

def test_eval_seeds_are_new_and_stable():
    a = eval_seeds(1000, "reach-v3", 5)
    assert a == eval_seeds(1000, "reach-v3", 5) and len(set(a)) == 5
    assert eval_seeds(1000, "push-v3", 5) != a
    assert a[0] not in eval_seeds(1000, "reach-v3", 5, exclude=[a[0]])
    assert eval_seeds([3, 4, 5], "reach-v3", 2, exclude=[3]) == [4, 5]


def test_embedding_cache_is_reused(data, model, tmp_path, monkeypatch):
    dataset = read_lerobot(data)
    calls = {"images": 0}
    original = model.encode_images

    def counting(*a, **k):
        calls["images"] += 1
        return original(*a, **k)

    monkeypatch.setattr(model, "encode_images", counting)
    first = embed_dataset(model, dataset, tmp_path)
    assert not first["cached"] and calls["images"] == len(dataset)
    n = dataset.num_frames()
    assert first["image"].shape == (n, model.embed_dim) and first["image"].dtype == np.float32
    assert first["actions"].shape == (n, 4) and first["states"].shape == (n, 4)
    assert first["text"].shape == (len(dataset), model.embed_dim) and first["succeeded"].all()
    second = embed_dataset(model, dataset, tmp_path)
    assert second["cached"] and calls["images"] == len(dataset)  # nothing embedded again
    assert second["key"] == first["key"] and np.array_equal(second["image"], first["image"])
    # Other weights give another cache key (checked on the fingerprint: embedding again costs seconds).
    assert model_fingerprint(liv.create("clip-tiny", seed=1)) != model_fingerprint(model)
    assert model_fingerprint(liv.create("clip-tiny")) == model_fingerprint(model)


@pytest.mark.parametrize("conditioning", ["text", "onehot"])
def test_train_policy_reduces_training_loss(embeddings, conditioning):
    res = train_policy(embeddings, conditioning, hidden=(64, 64), steps=150, batch_size=32, seed=0, snapshot_at=(1,))
    start = copy.deepcopy(res.policy)
    start.load_state_dict(res.snapshots[1])
    assert training_loss(res.policy, embeddings) < 0.5 * training_loss(start, embeddings)
    again = train_policy(embeddings, conditioning, hidden=(64, 64), steps=5, batch_size=32, seed=0)
    first5 = train_policy(embeddings, conditioning, hidden=(64, 64), steps=5, batch_size=32, seed=0)
    assert again.losses == first5.losses  # seeded
    width = model_dim = embeddings["image"].shape[1]
    width += model_dim if conditioning == "text" else 2
    assert res.policy.net[0].in_features == width + 4
    assert res.policy.task_texts == [TASKS[t].text for t in TASK_PAIR]


def test_evaluate_policy_is_well_formed(embeddings, model):
    policy = train_policy(embeddings, "onehot", hidden=(32,), steps=20, batch_size=32).policy
    result = evaluate_policy(policy, model, ["reach-v3"], seeds=7, episodes=1, max_steps=4, size=SIZE)
    r = result["tasks"]["reach-v3"]
    assert r["success_rate"] in (0.0, 1.0) and r["steps"][0] <= 4 and len(r["successes"]) == 1
    assert r["env_seeds"] == eval_seeds(7, "reach-v3", 1) and 0.0 <= result["average"] <= 1.0
    assert result["steps_per_second"] > 0
    with pytest.raises(ValueError, match="not among"):
        evaluate_policy(policy, model, ["drawer-open-v3"], episodes=1, max_steps=1, size=SIZE)


# -------------------------------------------------------------------------------------- planning quick

@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_planner_moves_hand_toward_target(planner):
    # A known objective: minus the hand's distance to a point 7 cm away; the planner alone must reach it.
    with make_env("reach-v3", 3, size=SIZE) as env:
        start = env.reset()[:3].copy()
        target = start + np.array([0.06, 0.0, -0.04])
        scorer = StateScorer(lambda s: -np.linalg.norm(s[:, :3] - target, axis=1))
        config = PlannerConfig(planner=planner, horizon=5, samples=16, iterations=2, replan_every=2, seed=0)
        rec = run_episode(env, scorer, config, max_steps=12)
    # Measured over planner seeds 0-5: 6-40% of the start distance is left after 12 steps (the hand lags
    # its commands for a few steps); with a flat objective the hand drifts ~5% further away instead.
    end = np.asarray(rec["states"][-1][:3])
    assert np.linalg.norm(end - target) < 0.5 * np.linalg.norm(start - target)
    assert rec["steps"] == 12 and len(rec["values"]) == 7 and rec["values"][-1] > rec["values"][0]


def test_discounted_score_is_the_discounted_reward_sum():
    # Value = hand x; a fixed plan's discounted score must equal the formula on its states.
    with make_env("reach-v3", 3, size=SIZE) as env:
        env.reset()
        start = env.get_state()
        plans = np.zeros((2, 4, 4))
        plans[0, :, 0], plans[1, :, 1] = 1.0, 1.0
        scorer = StateScorer(lambda s: s[:, 0])
        x0 = float(env.proprio()[0])
        cfg = PlannerConfig(horizon=4, samples=2, score="discounted", gamma=0.5, render_every=2)
        scores, steps = score_candidates(env, start, plans, scorer, cfg, x0)
        final, _ = score_candidates(env, start, plans, scorer, PlannerConfig(horizon=4, samples=2), x0)
        env.set_state(start)
        xs = [x0]
        for t in range(4):
            xs.append(float(env.step(plans[0, t])[0][0]))
    assert steps == 8
    assert scores[0] == pytest.approx((xs[2] - xs[0]) + 0.5 * (xs[4] - xs[2]))
    assert final[0] == pytest.approx(xs[4] - x0)  # undiscounted: telescopes to S(o_H) - S(o_0)


def test_planning_with_liv_reward_is_well_formed(model):
    config = PlannerConfig(horizon=4, samples=6, iterations=1, replan_every=2)
    result = run_planning(model, ["reach-v3"], config, episodes=1, max_steps=4, size=SIZE)
    assert set(result["tasks"]) == {"reach-v3"} and result["average"]["mean"] in (0.0, 1.0)
    rec = result["episodes"][0]
    assert rec["steps"] <= 4 and len(rec["values"]) == len(rec["plan_seconds"]) + 1
    assert all(-1.0 <= v <= 1.0 for v in rec["values"]) and rec["sim_steps"] == 2 * 6 * 4
    scorer = LIVScorer(model, "reach the red target")
    frames = np.zeros((3, *SIZE, 3), np.uint8)
    assert scorer(frames, np.zeros((3, 4))).shape == (3,) and scorer.frames_scored == 3


def test_command_options_parse(tmp_path):
    for cls, argv in ((BCArgs, ["--data", str(tmp_path), "--model", "clip-small", "--model", "clip-tiny", "--one-hot",
                                "--hidden", "8", "8", "--size", "64", "64"]),
                      (PlanArgs, ["--model", "clip-tiny", "--tasks", "reach-v3", "--planner", "mppi"])):
        parser = argparse.ArgumentParser()
        add_dataclass_arguments(parser, cls)
        args = dataclass_from_args(cls, parser.parse_args(argv))
        assert args.model[-1] == "clip-tiny"
    assert args.planner == "mppi" and args.seeds == [0]
    # every planner setting given to `liv plan` reaches the planner; the rest of PlanArgs does not
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, PlanArgs)
    args = dataclass_from_args(PlanArgs, parser.parse_args(["--planner", "mppi", "--smoothing", "0.25", "--init-std",
                                                            "0.3", "--horizon", "7", "--episodes", "2"]))
    config = args.resolved()
    assert type(config) is PlannerConfig
    assert (config.planner, config.smoothing, config.init_std, config.horizon, config.samples) == ("mppi", 0.25, 0.3,
                                                                                                  7, 128)
    with pytest.raises(ValueError, match="preset"):
        run_plan(PlanArgs(model=["no-such-model"], tasks=["reach-v3"]))


# ------------------------------------------------------------------------------------ rendering settings

DEMO = {"simulator": "metaworld", "camera": "closeup", "size": [64, 64], "record_every": 4}


def test_rendering_defaults_to_the_models_training_frames():
    got = resolve_rendering("liv plan", None, None, [("clip-tiny", None), ("demo/model", DEMO)])
    assert (got.camera, got.size, got.warnings) == ("closeup", (64, 64), ())
    assert got.notes == ("liv plan: camera closeup and size 64x64 px from demo/model's provenance (it was trained "
                         "on camera closeup at 64x64 px, one frame every 4 steps); --camera / --size choose others",)
    # no model with a record: the command's defaults, silently
    assert resolve_rendering("liv plan", None, None, [("clip-tiny", None)]) == resolve_rendering(
        "liv plan", None, None, [], default_size=(64, 64))
    plain = resolve_rendering("liv bc", None, None, [("clip-tiny", None)], default_size=(128, 128))
    assert (plain.camera, plain.size, plain.notes, plain.warnings) == ("corner", (128, 128), (), ())


def test_rendering_options_and_dataset_win_and_a_mismatch_is_warned():
    given = resolve_rendering("liv plan", "corner", None, [("demo/model", DEMO)])
    assert (given.camera, given.size) == ("corner", (64, 64))
    assert given.notes == ("liv plan: size 64x64 px from demo/model's provenance (it was trained on camera closeup "
                           "at 64x64 px, one frame every 4 steps); --camera / --size choose others",)
    assert len(given.warnings) == 1 and "\n" not in given.warnings[0]
    assert given.warnings[0].startswith("liv plan: warning: demo/model was trained on camera closeup at 64x64 px")
    assert "render camera corner (--camera) at 64x64 px" in given.warnings[0]
    # liv bc: the policy learns from the dataset's frames, so they decide before the model's record
    data = {"simulator": "metaworld", "camera": "corner2", "size": [32, 48], "record_every": 1}
    bc = resolve_rendering("liv bc", None, None, [("demo/model", DEMO), ("other", {**DEMO, "camera": "corner2"})],
                           data, default_size=(128, 128))
    assert (bc.camera, bc.size, bc.notes) == ("corner2", (32, 48), ())
    assert [w.split(" was ")[0] for w in bc.warnings] == ["liv bc: warning: demo/model", "liv bc: warning: other"]
    same = resolve_rendering("liv bc", "closeup", [64, 64], [("demo/model", DEMO)], data)
    assert (same.camera, same.size, same.notes, same.warnings) == ("closeup", (64, 64), (), ())


def test_training_on_sim_data_records_its_rendering(data, tmp_path):
    from liv.train import _provenance
    from liv.training.config import build_config

    recorded = rendering_settings(data)
    assert recorded == {"simulator": "metaworld", "camera": DATA_CAMERA, "size": list(DATA_SIZE), "record_every": 2}
    on_sim = _provenance({"init": "random", "rendering": DEMO}, build_config({"data": data, "out": tmp_path / "a"}))
    assert on_sim["rendering"] == recorded and on_sim["init"] == "random" and on_sim["data"] == str(data)
    # other data: the initial model's record is dropped, since its frames are no longer what was learned
    frames = tmp_path / "frames"
    frames.mkdir()
    assert "rendering" not in _provenance({"rendering": DEMO}, build_config({"data": frames, "out": tmp_path / "b"}))


def test_plan_renders_as_the_model_was_trained(data, tmp_path, capsys):
    model = liv.create("clip-tiny")
    model.config.provenance["rendering"] = rendering_settings(data)
    model.save(tmp_path / "model")
    capsys.readouterr()
    assert run_plan(PlanArgs(model=[str(tmp_path / "model")], tasks=["reach-v3"], episodes=1, out=tmp_path / "plan",
                             horizon=2, samples=2, iterations=1, max_steps=1)) == 0
    out, err = capsys.readouterr()
    assert f"liv plan: camera {DATA_CAMERA} and size 48x48 px from {tmp_path / 'model'}'s provenance" in out
    assert "warning" not in err
    # the row is labelled by the run folder holding "model" (liv.eval.labels)
    settings = json.loads((tmp_path / "plan" / "plan.json").read_text())["rows"][tmp_path.name]["settings"]
    assert (settings["camera"], settings["size"]) == (DATA_CAMERA, list(DATA_SIZE))
    # provenance is free-form JSON: a hand-edited record that cannot be used is refused in one line
    model.config.provenance["rendering"] = {"camera": "closeup", "size": [64]}
    model.save(tmp_path / "edited")
    with pytest.raises(ValueError, match=r"--model .*edited: provenance.rendering must hold a camera name and a "
                                         r"\[height, width\] size in pixels, got"):
        run_plan(PlanArgs(model=[str(tmp_path / "edited")], tasks=["reach-v3"], episodes=1, out=tmp_path / "p2"))


# -------------------------------------------------------------------------------------------------- slow

@pytest.mark.slow
def test_run_bc_protocol(data, model, embeddings):
    result = run_bc(model, read_lerobot(data), TASK_PAIR, "text", train_seeds=(0, 1), steps=20, batch_size=32,
                    hidden=(32,), eval_episodes=1, max_steps=3, size=SIZE, embeddings=embeddings)
    assert set(result["tasks"]) == set(TASK_PAIR) and len(result["seeds"]) == 2
    assert all(s["checkpoint"] in ("half", "final") for s in result["seeds"])
    assert len(result["average"]["per_seed"]) == 2


@pytest.mark.slow
def test_bc_and_plan_commands(data, tmp_path, capsys):
    assert run_bc_command(BCArgs(data=data, model=["clip-tiny"], out=tmp_path / "bc", one_hot=True, seeds=[0],
                                 steps=10, batch_size=16, hidden=[16], episodes=1, max_steps=2)) == 0
    rows = json.loads((tmp_path / "bc" / "bc.json").read_text())["rows"]
    assert set(rows) == {"clip-tiny (random init) (text)", "clip-tiny (random init) (one-hot)"}
    assert "| clip-tiny (random init) (one-hot) |" in (tmp_path / "bc" / "bc.md").read_text()
    assert run_plan(PlanArgs(model=["clip-tiny"], tasks=["reach-v3"], episodes=1, out=tmp_path / "plan", horizon=3,
                             samples=4, iterations=1, max_steps=2)) == 0
    assert "reach" in (tmp_path / "plan" / "plan.md").read_text()
    assert "wrote" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- weighted BC

def test_advantages_and_weights_by_hand():
    from liv.sim.bc_weights import advantages, rwr_weights

    values = np.array([0.0, 1.0, 3.0, 6.0, 2.0, 2.0, 5.0])
    episode = np.array([0, 0, 0, 0, 1, 1, 1])
    adv = advantages(values, episode, horizon=2)
    assert adv.tolist() == [3.0, 5.0, 3.0, 0.0, 3.0, 3.0, 0.0]  # V_min(t+2, last) - V_t, per episode
    # Task "a" holds both episodes: mean 17/7, population std sqrt(138/49) = 1.678.
    w = rwr_weights(adv, episode, ["a", "a"], beta=1.0, max_weight=2.0)
    z = (adv - 17 / 7) / math.sqrt(138 / 49)
    assert w == pytest.approx(np.minimum(np.exp(z), 2.0))
    assert w[1] == 2.0 and w[3] == pytest.approx(math.exp(-17 / 7 / math.sqrt(138 / 49)))  # clipped; lowest
    # One task per episode; a task whose advantages are all equal gets weight 1.
    flat = rwr_weights(np.array([1.0, 1.0, 0.0, 4.0]), np.array([0, 0, 1, 1]), ["a", "b"], beta=0.5)
    assert flat[:2].tolist() == [1.0, 1.0] and flat[2:] == pytest.approx([np.exp(-0.5), np.exp(0.5)])


def test_liv_values_against_a_naive_loop(embeddings):
    from liv.sim.bc_weights import liv_values

    text, image = liv_values(embeddings, "text"), liv_values(embeddings, "image")
    ep = embeddings["episode"]
    for n in range(0, len(ep), 17):
        e = ep[n]
        last = np.flatnonzero(ep == e)[-1]
        cos = lambda a, b: float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
        assert text[n] == pytest.approx(cos(embeddings["image"][n], embeddings["text"][e]), abs=1e-5)
        assert image[n] == pytest.approx(cos(embeddings["image"][n], embeddings["image"][last]), abs=1e-5)
    assert image[np.flatnonzero(np.diff(np.r_[ep, -1]))] == pytest.approx(1.0)  # each last frame is its own goal


def test_weighted_loss_equals_a_naive_loop_and_unit_weights_change_nothing(embeddings):
    from liv.sim.bc import weighted_mse

    g = torch.Generator().manual_seed(0)
    pred, target, w = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.rand(6, generator=g)
    naive = sum(float(w[i]) * sum((float(pred[i, a]) - float(target[i, a])) ** 2 for a in range(4)) / 4
                for i in range(6)) / float(w.sum())
    assert float(weighted_mse(pred, target, w)) == pytest.approx(naive, rel=1e-6)
    n = len(embeddings["episode"])
    plain = train_policy(embeddings, steps=5, batch_size=8, hidden=[16], seed=1)
    ones = train_policy(embeddings, steps=5, batch_size=8, hidden=[16], seed=1, weights=np.full(n, 3.0))
    assert ones.losses == pytest.approx(plain.losses, rel=1e-5)
    with pytest.raises(ValueError, match="weights must be"):
        train_policy(embeddings, steps=1, batch_size=8, hidden=[16], weights=np.full(n - 1, 1.0))


def test_weighted_bc_command_writes_weights(data, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "bc"
    assert run_bc_command(BCArgs(data=data, model=["clip-tiny"], out=out, seeds=[0], steps=5, batch_size=8,
                                 hidden=[16], episodes=1, max_steps=2, weighting=["none", "rwr", "sim"],
                                 train_episodes="all")) == 0
    rows = json.loads((out / "bc.json").read_text())["rows"]
    assert set(rows) == {"clip-tiny (random init) (text)", "clip-tiny (random init) (text, rwr-weighted)",
                         "clip-tiny (random init) (text, sim-weighted)"}
    assert all(r["settings"]["only_successful"] is False for r in rows.values())
    ds = read_lerobot(data)
    table = pq.read_table(out / "weights" / "clip_tiny_random_init-rwr.parquet")
    assert table.column_names == ["index", "episode_index", "frame_index", "weight", "advantage"]
    assert [str(t) for t in table.schema.types] == ["int64", "int64", "int64", "float", "float"]
    assert table.num_rows == sum(len(e) for e in ds)
    assert table.schema.metadata[b"reward_model_path"] == b"clip-tiny"
    frame_index = table.column("frame_index").to_numpy()
    assert frame_index[: len(ds[0])].tolist() == list(range(len(ds[0]))) and frame_index[len(ds[0])] == 0
    assert (table.column("weight").to_numpy() <= 20.0).all()


def test_interval_table_pools_seeds_and_rollouts():
    from liv.sim.report import interval_table
    from liv.sim.reproduce.stats import wilson_interval

    def seed(checkpoint, a, b):
        return {"checkpoint": checkpoint, checkpoint: {"tasks": {"t1": {"successes": a}, "t2": {"successes": b}}}}

    bc_row = {"tasks": {}, "seeds": [seed("final", [True, False], [True, True]), seed("half", [False, False], [True])]}
    plan_row = {"tasks": {}, "episodes": [{"seed": 0, "task": "t1", "success": True},
                                          {"seed": 1, "task": "t1", "success": False},
                                          {"seed": 0, "task": "t2", "success": False}]}
    table = interval_table({"bc": bc_row, "plan": plan_row}, ["t1", "t2"]).splitlines()
    low, high = wilson_interval(1, 4)
    assert table[2].startswith(f"| bc | 25 [{100 * low:.0f}, {100 * high:.0f}] | 100 [")
    low, high = wilson_interval(4, 7)
    assert table[2].endswith(f"| 57 [{100 * low:.0f}, {100 * high:.0f}] |")
    assert table[3].startswith("| plan | 50 [")

"""The annotated Meta-World v3 tasks and the suite's defaults, apart from the simulation code.

Command-line options list these names as their choices, so this module imports nothing beyond the
standard library: `liv sim generate --help` and friends start without numpy or MuJoCo.
"""

from __future__ import annotations

from liv.sim.suite import TaskSpec

DEFAULT_SIZE = (128, 128)
"""(height, width) in pixels of rendered frames unless chosen otherwise."""
CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV", "closeup")
"""Cameras of Meta-World's scenes, and ``closeup`` (a free camera added by liv; see env.VIRTUAL_CAMERAS)."""
STATE_NAMES = ("hand_x", "hand_y", "hand_z", "gripper_opening")
"""Names of the proprioceptive state: hand position in metres (world frame), finger gap / 0.1 m in [0, 1]."""
ACTION_NAMES = ("dx", "dy", "dz", "grip")
"""Names of the 4 action values, each in [-1, 1]: hand motion (x 1 cm per step), grip effort (+1 closes)."""
STEP_SECONDS = 0.0125
"""Simulated time of one step: 5 physics steps of 2.5 ms (80 steps per second)."""
EPISODE_STEPS = 200
"""Default step limit of generated and evaluated episodes (the experts need 15-130; Meta-World allows 500)."""


# Success rates measured with metaworld 3.1.1 / mujoco 3.3.0: make_env(task, seed) for seeds 0..19, the
# expert's clipped actions, up to 500 steps. Only tasks at >= 80% are listed; expert_steps is
# min/median/max steps to the first success. Also measured (10 seeds) and left out only to keep the set
# small: button-press, coffee-push, coffee-pull, dial-turn, lever-pull, basketball, peg-unplug-side,
# push-back (100%; push-back needed up to 479 steps), sweep-into (90%).
# faucet-open-v3 turns the handle counterclockwise seen from above (measured: +81 degrees about world z,
# the handle's end swinging from pointing at the robot to the robot's right; Meta-World's paper says
# "rotate the faucet counter-clockwise"), a left turn; faucet-close-v3 turns it clockwise (-73 degrees).
TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("drawer-open-v3", "open the drawer", 1.00, "drawer-close-v3", expert_steps=(86, 88, 92)),
    TaskSpec("drawer-close-v3", "close the drawer", 1.00, "drawer-open-v3", expert_steps=(78, 78, 79)),
    TaskSpec("faucet-open-v3", "turn the faucet left", 1.00, "faucet-close-v3", expert_steps=(56, 60, 64)),
    TaskSpec("faucet-close-v3", "turn the faucet right", 1.00, "faucet-open-v3", expert_steps=(62, 64, 68)),
    TaskSpec("door-open-v3", "open the door", 0.90, "door-close-v3", expert_steps=(71, 80, 118)),
    TaskSpec("door-close-v3", "close the door", 1.00, "door-open-v3", expert_steps=(52, 65, 77)),
    TaskSpec("window-open-v3", "slide the window open", 1.00, "window-close-v3", expert_steps=(77, 86, 95)),
    TaskSpec("window-close-v3", "slide the window closed", 1.00, "window-open-v3", expert_steps=(76, 79, 88)),
    TaskSpec("door-lock-v3", "lock the door", 1.00, "door-unlock-v3", expert_steps=(56, 66, 127)),
    TaskSpec("door-unlock-v3", "unlock the door", 1.00, "door-lock-v3", expert_steps=(41, 43, 79)),
    TaskSpec("handle-press-v3", "press the handle down", 1.00, "handle-pull-v3", expert_steps=(15, 33, 48)),
    TaskSpec("handle-pull-v3", "pull the handle up", 1.00, "handle-press-v3", expert_steps=(90, 104, 125)),
    TaskSpec("plate-slide-v3", "slide the plate into the net", 1.00, "plate-slide-back-v3", expert_steps=(48, 51, 54)),
    TaskSpec("plate-slide-back-v3", "slide the plate out of the net", 1.00, "plate-slide-v3",
             expert_steps=(42, 76, 85)),
    TaskSpec("button-press-topdown-v3", "press the button", 1.00, expert_steps=(58, 64, 75)),
    TaskSpec("coffee-button-v3", "press the button on the coffee machine", 1.00, expert_steps=(27, 36, 44)),
    TaskSpec("reach-v3", "reach the red target", 1.00, expert_steps=(36, 47, 65)),
    TaskSpec("push-v3", "push the puck to the green target", 1.00, expert_steps=(49, 61, 73)),
    TaskSpec("pick-place-v3", "pick up the puck and place it at the blue target", 1.00, expert_steps=(46, 52, 62)),
)}

PAIRED_TASKS = ("drawer-open-v3", "drawer-close-v3", "faucet-open-v3", "faucet-close-v3", "door-open-v3",
                "door-close-v3", "window-open-v3", "window-close-v3")
"""The four same-scene opposite pairs (open/close drawer, faucet, door, window)."""

DEFAULT_TASKS = PAIRED_TASKS + ("button-press-topdown-v3", "reach-v3")
"""The default task set of `liv sim generate`: the four opposite pairs plus two single tasks."""

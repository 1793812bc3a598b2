"""`liv sim generate`: simulate scripted Meta-World episodes into a LeRobot v3.0 dataset.

Registered in :mod:`liv.cli`; heavy imports (metaworld, mujoco) happen only when the command runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from liv.envs.metaworld_tasks import DEFAULT_SIZE, DEFAULT_TASKS, TASKS


@dataclass
class SimGenerateArgs:
    """Simulate scripted Meta-World v3 episodes with language annotations into a LeRobot v3.0 dataset."""

    tasks: list[str] = field(default_factory=list, metadata={"choices": tuple(TASKS)})
    """Meta-World v3 tasks to record; none given: the open/close pairs of drawer, faucet, door and window,
    plus button-press-topdown-v3 and reach-v3. --list-tasks shows every annotated task."""
    episodes: int = field(default=20, metadata={"min": 1})
    """Expert episodes per task, each in its own random object/goal layout."""
    seed: int = field(default=0, metadata={"min": 0})
    """Seed from which every episode's layout is derived (with the task, kind and episode index)."""
    out: Path = field(default=Path("metaworld_liv"), metadata={"path": "out_dir"})
    """Output folder of the dataset (new or empty); <out>.partial holds finished episodes until the end, so
    an interrupted run resumes when rerun with the same options."""
    camera: str = "corner"
    """Camera: corner, corner2, corner3, corner4, topview, behindGripper, gripperPOV, or closeup (a free
    camera framing the workspace, objects ~2x larger than from corner)."""
    size: tuple[int, int] = field(default=DEFAULT_SIZE, metadata={"min": 2})
    """Frame height and width in pixels (even numbers)."""
    max_steps: int = field(default=200, metadata={"min": 1})
    """Step limit of an episode (12.5 ms each; the experts need 15-130 steps)."""
    record_every: int = field(default=1, metadata={"min": 1})
    """Keep every k-th frame (the dataset's fps is 80 / k; the final frame is always kept)."""
    failures: int = field(default=0, metadata={"min": 0})
    """Extra unsuccessful episodes per task (random motion, or the expert giving up part way)."""
    workers: int = field(default=1, metadata={"min": 1})
    """Processes simulating in parallel."""
    progress: bool = True
    """Show a progress bar and a summary."""
    list_tasks: bool = False
    """Print the annotated tasks (name, text, measured expert success rate) and exit."""


def run_sim_generate(args: SimGenerateArgs) -> int:
    """Run `liv sim generate` -> exit status (0 on success; errors are raised for the CLI to report)."""
    if args.list_tasks:
        for spec in TASKS.values():
            pair = f"  (opposite: {spec.opposite})" if spec.opposite else ""
            print(f"{spec.name:<26} {spec.success_rate:>4.0%}  {spec.text}{pair}")
        return 0
    from liv.envs.metaworld_data import generate_dataset

    generate_dataset(args.tasks or DEFAULT_TASKS, args.episodes, seed=args.seed, out=args.out, camera=args.camera,
                     size=tuple(args.size), max_steps=args.max_steps, record_every=args.record_every,
                     failures=args.failures, progress=args.progress, workers=args.workers)
    return 0

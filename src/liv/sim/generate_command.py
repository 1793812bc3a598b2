"""`liv sim generate`: simulate a suite's scripted episodes into a LeRobot v3.0 dataset.

Registered in :mod:`liv.cli`; heavy imports (the simulators, numpy) happen only when the command runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from liv.sim.suite import all_tasks, get_suite, suite_names, suite_of


@dataclass
class SimGenerateArgs:
    """Simulate scripted episodes with language annotations (Meta-World v3 or the kitchen) into a LeRobot v3.0
    dataset."""

    tasks: list[str] = field(default_factory=list, metadata={"choices": all_tasks()})
    """Tasks to record, all of one suite; none given: the suite's defaults (Meta-World: the open/close pairs of
    drawer, faucet, door and window, plus button-press-topdown-v3 and reach-v3; kitchen: its five tasks).
    --list-tasks shows every annotated task."""
    suite: str | None = field(default=None, metadata={"choices": suite_names()})
    """Simulation suite; default: the one the --tasks belong to, else metaworld."""
    episodes: int = field(default=20, metadata={"min": 1})
    """Expert episodes per task, each from its own random start state (layout)."""
    seed: int = field(default=0, metadata={"min": 0})
    """Seed from which every episode's layout is derived (with the task, kind and episode index)."""
    out: Path = field(default=Path("metaworld_liv"), metadata={"path": "out_dir"})
    """Output folder of the dataset (new or empty); <out>.partial holds finished episodes until the end, so
    an interrupted run resumes when rerun with the same options."""
    camera: str | None = None
    """Camera; default: the suite's first. Meta-World: corner, corner2, corner3, corner4, topview,
    behindGripper, gripperPOV, or closeup (a free camera framing the workspace, objects ~2x larger than from
    corner); the kitchen: see --list-tasks."""
    size: tuple[int, int] | None = field(default=None, metadata={"min": 2})
    """Frame height and width in pixels (even numbers); default: the suite's (128 128)."""
    max_steps: int | None = field(default=None, metadata={"min": 1})
    """Step limit of an episode; default: the suite's (Meta-World: 200 steps of 12.5 ms, its experts need
    15-130)."""
    record_every: int = field(default=1, metadata={"min": 1})
    """Keep every k-th frame (the dataset's fps is the suite's step rate / k, Meta-World 80 / k; the final
    frame is always kept)."""
    failures: int = field(default=0, metadata={"min": 0})
    """Extra unsuccessful episodes per task, of the --failure-kinds in turn."""
    failure_kinds: list[str] = field(default_factory=lambda: ["random", "gave_up"],
                                     metadata={"choices": ("random", "gave_up", "stopped", "noisy", "opposite")})
    """How failure episodes fail: random (smooth random motion), gave_up (the expert for 20-60% of the steps,
    then random motion), stopped (the expert for 30-70%, then still), noisy (the expert with action noise of
    std 0.8), opposite (the expert of the same scene's opposite task, e.g. closing the drawer to be opened;
    Meta-World's paired tasks). Each episode's kind is recorded in meta/liv_generation.json."""
    workers: int = field(default=1, metadata={"min": 1})
    """Processes simulating in parallel."""
    progress: bool = True
    """Show a progress bar and a summary."""
    list_tasks: bool = False
    """Print the annotated tasks (name, measured expert success rate, text) of the suite (all suites when none
    is chosen), its cameras, and exit."""


def run_sim_generate(args: SimGenerateArgs) -> int:
    """Run `liv sim generate` -> exit status (0 on success; errors are raised for the CLI to report)."""
    if args.list_tasks:
        for name in [args.suite] if args.suite else suite_names():
            suite = get_suite(name)
            print(f"{suite.name}: {suite.title}; cameras {', '.join(suite.cameras)}")
            for spec in suite.tasks.values():
                pair = f"  (opposite: {spec.opposite})" if spec.opposite else ""
                print(f"  {spec.name:<26} {spec.success_rate:>4.0%}  {spec.text}{pair}")
        return 0
    from liv.sim.generate import generate_dataset

    suite = suite_of(args.tasks, args.suite) if args.tasks else get_suite(args.suite or "metaworld")
    generate_dataset(args.tasks or suite.default_tasks, args.episodes, seed=args.seed, out=args.out,
                     camera=args.camera, size=tuple(args.size) if args.size else None, max_steps=args.max_steps,
                     record_every=args.record_every, failures=args.failures, progress=args.progress,
                     workers=args.workers, suite=suite.name, failure_kinds=args.failure_kinds)
    return 0

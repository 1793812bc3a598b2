"""Fine-tuning step time of liv against the reference implementation (penn-pal-lab/LIV), side by side.

    git clone https://github.com/penn-pal-lab/LIV /path/to/LIV      # once; this script downloads nothing
    python bench/reference_speed.py --reference /path/to/LIV --preset clip-rn50 --batch 8 --steps 3
    python bench/reference_speed.py --reference /path/to/LIV --preset clip-tiny --steps 5   # a quick check

One process, one CPU, fp32, the same weights and the same batch for both, steps alternating
(reference, liv, reference, liv, ...) so that load from other jobs hits both alike:

- the weights: ``liv.create(preset)``'s random initialisation rounded to fp16 values (the reference's
  ``clip.load`` builds CLIP in fp16 before loading the weights, as OpenAI's RN50 weights are; the
  rounding makes that load exact), loaded into liv's model and written to a temporary TorchScript
  archive holding only those tensors under CLIP's keys, the form of OpenAI's RN50.pt, which the
  reference's own ``clip.load`` reads (its other path, a plain state-dict file, fails on current
  torch: the TorchScript attempt before it leaves the file at its end);
- the reference's step: its ``liv.trainer.Trainer.update`` on its ``LIV`` module (fine-tuning
  settings of its cfgs/training/finetune.yaml: clipweight 1, visionweight 1, langweight 0, no
  negatives, Adam lr 1e-5) wrapped in ``torch.nn.DataParallel`` as its train_liv.py does on a GPU:
  5 frames per sample encoded (o_0, o_g, o_k, o_k+1 and the text-goal frame, which fine-tuning draws
  equal to o_g), all 77 text positions, Adam's per-tensor loop;
- liv's step: bench/model_speed.py's ``fine_tuning_step`` (`liv train`'s: 4 distinct frames per
  sample, channels-last image tower, texts cut to the longest, fused Adam).

The losses are checked at the shared starting weights in eval mode (BatchNorm on its running
statistics): they must agree to 1e-5 (relative), else the exit status is 1. In train mode they
differ a little by design: the reference's BatchNorm batch holds each goal frame twice. The fp32 conv
peak (bench/model_speed.py's ``measure_peak``) is measured before and after the steps; speeds are
normalised by the higher of the two, from the fastest step of each (the least disturbed by other
jobs) and from the median step. Prints ONE line of JSON.

What the reference needs that is not installed is replaced, only when missing, by the narrowest
stand-in, registered in ``sys.modules`` for this process (listed in the output's ``stand_ins``):

- ``torchvision``: the reference's LIV module preprocesses tensors in its forward pass with
  ``transforms.Resize(R, antialias=None)``, ``CenterCrop(R)`` and ``Normalize(mean, std)``; these
  three are written here with torch ops as torchvision computes them on tensors (bilinear resize of
  the shorter side without antialiasing, returning the input when it has the size already, as it
  does here: frames are made at the model's resolution; centre crop; (x - mean) / std). Every other
  name the reference imports from torchvision (``Compose``, ``ToTensor``, ``utils.save_image``; its
  PIL pipeline and image saving) is unused by a training step and raises if called.
- ``pkg_resources`` (setuptools < 81): the reference's clip.py imports ``packaging`` through it for
  a version warning; the stand-in hands over the installed ``packaging`` itself.
- ``Tensor.cuda``: the reference's ``update`` moves its batch with ``.cuda()`` (it has no CPU path);
  during its steps that call returns the tensor itself, so everything runs on the CPU.

The reference's packages are loaded from their files: its ``clip`` package under the name ``clip``
(its modules ``import clip``), its ``liv/models/model_liv.py`` and ``liv/trainer.py`` as
``reference_liv_model`` and ``reference_liv_trainer``, so they never meet this project's ``liv``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import liv  # noqa: E402
from liv.models.presets import PRESETS  # noqa: E402
from liv.objectives import FINETUNE_WEIGHTS  # noqa: E402
from liv.training.objective import Objective  # noqa: E402
from liv.training.speed import prepare_for_training  # noqa: E402
from model_speed import fine_tuning_step, make_batch, measure_peak  # noqa: E402

REFERENCE_FILES = ("liv/models/model_liv.py", "liv/trainer.py", "liv/models/clip/clip/__init__.py")
AGREEMENT = 1e-5
"""Largest relative difference allowed between the two eval-mode losses at the same weights."""


# ------------------------------------------------------------------------------------ stand-ins

class _Resize(nn.Module):
    """torchvision's tensor Resize(size) for an int size: the shorter side to ``size``, bilinear, no antialias."""

    def __init__(self, size, interpolation=None, max_size=None, antialias=None):
        super().__init__()
        if not isinstance(size, int) or max_size is not None or antialias:
            raise NotImplementedError("stand-in Resize: only Resize(int) without antialiasing is written")
        self.size, self.interpolation = size, interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.interpolation is not None:  # clip.py's bicubic PIL pipeline, never run by a training step
            raise NotImplementedError("stand-in Resize: only the default bilinear interpolation is written")
        h, w = x.shape[-2:]
        short, long = (h, w) if h <= w else (w, h)
        new_short, new_long = self.size, int(self.size * long / short)
        out = (new_short, new_long) if h <= w else (new_long, new_short)
        if (h, w) == out:
            return x
        return nn.functional.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=False)


class _CenterCrop(nn.Module):
    """torchvision's tensor CenterCrop(size) for an int size no larger than the image (it would pad)."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < self.size or w < self.size:
            raise NotImplementedError("stand-in CenterCrop: padding a smaller image is not written")
        top, left = int(round((h - self.size) / 2.0)), int(round((w - self.size) / 2.0))
        return x[..., top:top + self.size, left:left + self.size]


class _Normalize(nn.Module):
    """torchvision's tensor Normalize(mean, std): (x - mean) / std per channel, not in place."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x - mean) / std


def _unused(name: str) -> type:
    """A class the reference constructs or imports but a training step never calls."""

    def refuse(*args, **kwargs):
        raise NotImplementedError(f"stand-in torchvision: {name} is not used by a training step")

    return type(name, (), {"__init__": lambda self, *a, **k: None, "__call__": refuse})


def install_stand_ins() -> list[str]:
    """Register the stand-ins for whatever of torchvision and pkg_resources is missing -> their names."""
    installed = []
    if importlib.util.find_spec("torchvision") is None:
        tv = types.ModuleType("torchvision")
        tv.__path__ = []  # a package, so that `import torchvision.transforms` finds the entry below
        transforms = types.ModuleType("torchvision.transforms")
        transforms.Resize, transforms.CenterCrop, transforms.Normalize = _Resize, _CenterCrop, _Normalize
        transforms.Compose, transforms.ToTensor = _unused("Compose"), _unused("ToTensor")
        utils = types.ModuleType("torchvision.utils")
        utils.save_image = _unused("save_image")()
        tv.transforms, tv.utils = transforms, utils
        sys.modules.update({"torchvision": tv, "torchvision.transforms": transforms, "torchvision.utils": utils})
        installed.append("torchvision (Resize, CenterCrop, Normalize on tensors; the rest refuses to run)")
    if importlib.util.find_spec("pkg_resources") is None:
        import packaging.version

        pkg = types.ModuleType("pkg_resources")
        pkg.packaging = packaging
        sys.modules["pkg_resources"] = pkg
        installed.append("pkg_resources (hands over the installed packaging)")
    return installed


@contextlib.contextmanager
def batch_stays_on_cpu():
    """During the reference's update, ``Tensor.cuda()`` returns the tensor itself (see the docstring)."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


# ------------------------------------------------------------------------------------ the reference

def _load_file(name: str, path: Path, package_dir: Path | None = None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_reference(root: Path) -> tuple[type, type]:
    """The reference's LIV module class and Trainer class, loaded from the checkout at ``root``."""
    missing = [f for f in REFERENCE_FILES if not (root / f).is_file()]
    if missing:
        sys.exit(f"reference_speed.py: --reference {root}: not a checkout of penn-pal-lab/LIV (missing "
                 f"{', '.join(missing)})")
    clip_dir = root / "liv" / "models" / "clip" / "clip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core, imported by model_liv.py
        _load_file("clip", clip_dir / "__init__.py", clip_dir)
        model_liv = _load_file("reference_liv_model", root / "liv" / "models" / "model_liv.py")
        trainer = _load_file("reference_liv_trainer", root / "liv" / "trainer.py")
    return model_liv.LIV, trainer.Trainer


def save_as_torchscript(weights: dict[str, torch.Tensor], path: Path) -> None:
    """Write ``weights`` as a TorchScript archive whose ``state_dict()`` is ``weights`` (no code in it)."""
    root = nn.Module()
    for key, tensor in weights.items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if not hasattr(module, name):
                module.add_module(name, nn.Module())
            module = getattr(module, name)
        module.register_buffer(leaf, tensor.contiguous())
    torch.jit.save(torch.jit.script(root), str(path))


def _commit(root: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


# ------------------------------------------------------------------------------------ measurement

def _timed(fn) -> tuple[float, float]:
    """(seconds, loss) of one call of ``fn`` returning a loss."""
    start = time.perf_counter()
    loss = float(fn())
    return time.perf_counter() - start, loss


def _summary(times: list[float]) -> dict:
    return {"min": round(min(times), 3), "median": round(statistics.median(times), 3),
            "all": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="a checkout of penn-pal-lab/LIV")
    parser.add_argument("--preset", default="clip-rn50", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps of each, after one warm-up step each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.batch < 2 or args.steps < 1:
        parser.error("--batch must be >= 2 (InfoNCE needs negatives) and --steps >= 1")

    stand_ins = install_stand_ins()
    ReferenceLIV, Trainer = load_reference(args.reference.resolve())
    peak_before = measure_peak(torch.device("cpu"))["conv3x3_gflops"]

    # ---------------------------------------------------------------- the same weights in both
    ours = liv.create(args.preset, seed=args.seed)
    weights = {k: v.half().float() if v.is_floating_point() else v for k, v in ours.clip.state_dict().items()}
    ours.clip.load_state_dict(weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.pt"
        save_as_torchscript(weights, path)
        reference = ReferenceLIV(modelid=str(path), device="cpu", lr=1e-5, weight_decay=1e-3, visionweight=1.0,
                                 langweight=0.0, clipweight=1.0, gamma=0.98, metric="cos", num_negatives=0,
                                 grad_text=True, scratch=False)
    theirs = reference.model.state_dict()
    if set(theirs) != set(weights) or any(not torch.equal(theirs[k], weights[k]) for k in weights):
        sys.exit("reference_speed.py: the reference's CLIP did not load the same weights")
    wrapped = nn.DataParallel(reference)  # what train_liv.py trains on a GPU; a plain call without one
    trainer = Trainer()
    prepare_for_training(ours)

    # ---------------------------------------------------------------- the same batch in both
    torch.manual_seed(args.seed)
    batch = make_batch(args.batch, ours.image_resolution)  # pixels in [0, 1], 4 distinct frames per sample
    ref_batch = (batch["pixels"][batch["slots"]], -torch.ones(args.batch), list(batch["texts"]))

    def reference_step(eval: bool = False) -> float:
        with batch_stays_on_cpu():
            return trainer.update(wrapped, ref_batch, 0, eval=eval)[0]["full_loss"]

    # ---------------------------------------------------------------- losses at the shared weights
    with torch.no_grad():
        ref_eval = reference_step(eval=True)
        ours.eval()
        ours_eval = float(Objective("liv", FINETUNE_WEIGHTS)(ours, batch, 0)[0])
    relative = abs(ref_eval - ours_eval) / max(abs(ref_eval), 1e-12)

    # ---------------------------------------------------------------- alternating training steps
    ours.train()
    ours_step = fine_tuning_step(ours, batch)
    times: dict[str, list[float]] = {"reference": [], "liv": []}
    losses: dict[str, list[float]] = {"reference": [], "liv": []}
    for i in range(args.steps + 1):  # step 0 warms both up and is not timed
        for name, fn in (("reference", reference_step), ("liv", ours_step)):
            seconds, loss = _timed(fn)
            losses[name].append(round(loss, 6))
            if i:
                times[name].append(seconds)
    peak_after = measure_peak(torch.device("cpu"))["conv3x3_gflops"]
    peak = max(peak_before, peak_after)

    # From the fastest step (the one least slowed by other jobs) and from the median step.
    per_tflops = {kind: {name: args.batch / pick(t) / (peak / 1000) for name, t in times.items()}
                  for kind, pick in (("min", min), ("median", statistics.median))}
    result = {
        "preset": args.preset, "batch": args.batch, "steps": args.steps, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "reference": str(args.reference), "reference_commit": _commit(args.reference), "stand_ins": stand_ins,
        "peak_conv_gflops": {"before": round(peak_before, 1), "after": round(peak_after, 1)},
        "step_s": {name: _summary(t) for name, t in times.items()},
        "samples_per_s_per_tflops": {kind: {name: round(v, 2) for name, v in values.items()}
                                     for kind, values in per_tflops.items()},
        "speedup_liv_vs_reference": {kind: round(v["liv"] / v["reference"], 2) for kind, v in per_tflops.items()},
        "eval_loss_at_same_weights": {"reference": ref_eval, "liv": ours_eval, "relative_difference": relative},
        "losses_agree": relative <= AGREEMENT,
        "train_losses": losses,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))
    if not (relative <= AGREEMENT and math.isfinite(ref_eval)):
        sys.exit(f"reference_speed.py: the losses disagree at the same weights: reference {ref_eval}, liv "
                 f"{ours_eval} (relative difference {relative:.2e} > {AGREEMENT})")


if __name__ == "__main__":
    main()

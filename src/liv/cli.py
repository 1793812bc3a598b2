"""The `liv` command line. Each command is a typed dataclass of options plus a function that runs it."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liv.cli_args import (ArgumentParser, UsageError, add_dataclass_arguments, dataclass_from_args, given_fields,
                          option_name)
from liv.model_names import model_name_problem
from liv.models.devices import device_problem


@dataclass
class InfoArgs:
    """Describe a model file: format, architecture, size, preprocessing and provenance."""

    model: str = field(metadata={"positional": True, "check": model_name_problem})
    """Model to describe: a liv model directory, a reference LIV model.pt or snapshot, an OpenAI CLIP file,
    or a model name (a preset: random weights)."""
    json: bool = False
    """Print machine-readable JSON instead of text."""


@dataclass
class ConvertArgs:
    """Convert any model file liv can read into liv's format (model.safetensors + config.json)."""

    source: str = field(metadata={"positional": True, "check": model_name_problem})
    """Model to convert (reference LIV release or snapshot, OpenAI CLIP TorchScript, state dict, or a model
    name)."""
    out: Path = field(metadata={"positional": True, "path": "out_dir"})
    """Output directory; created if needed, files in it are replaced atomically."""
    antialias: bool | None = None
    """Override the stored resize antialiasing (imports default to the reference's: off)."""


@dataclass
class EmbedArgs:
    """Embed texts and/or images with a model and write the embeddings to an .npz file."""

    model: str = field(metadata={"check": model_name_problem})
    """Model to use: a path (any format `liv info` reads) or a model name."""
    out: Path = field(metadata={"path": "out_file"})
    """Output .npz with arrays text_embeddings (T, D), image_embeddings (I, D), texts, images."""
    text: list[str] = field(default_factory=list)
    """Texts to embed (repeat the option or give several values)."""
    images: list[Path] = field(default_factory=list, metadata={"path": "file"})
    """Image files (PNG/JPEG) to embed."""
    strict_text: bool = False
    """Refuse (exit 2) a text longer than the model's context (77 tokens) instead of cutting it with a warning."""
    normalize: bool = False
    """L2-normalise the embeddings (the reference returns them unnormalised)."""
    device: str = field(default="cpu", metadata={"check": device_problem})
    """Torch device, e.g. cpu or cuda:0."""


def run_info(args: InfoArgs) -> int:
    import liv
    from liv.checkpoints.formats import describe_format

    model = liv.load(args.model)
    c = model.config
    info: dict[str, Any] = {
        "path": str(args.model),
        "format": model.source_format,
        "format_description": describe_format(model.source_format),
        "preset": c.preset,
        "parameters": model.num_parameters(),
        "embed_dim": model.embed_dim,
        "image_resolution": model.image_resolution,
        "antialias": c.antialias,
        "clip": c.clip.to_dict(),
        "provenance": c.provenance,
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{args.model}")
        print(f"  format        {info['format_description']} ({model.source_format})")
        print(f"  architecture  ResNet CLIP{' (preset ' + c.preset + ')' if c.preset else ''}, "
              f"{info['parameters'] / 1e6:.1f}M parameters")
        print(f"  embeddings    {model.embed_dim}-d; images {model.image_resolution}x{model.image_resolution} px, "
              f"resize antialias {'on' if c.antialias else 'off'}")
        cc = c.clip
        print(f"  vision        width {cc.vision_width}, blocks {list(cc.vision_layers)}, "
              f"{cc.resolved_vision_heads} pool heads")
        print(f"  text          width {cc.transformer_width}, {cc.transformer_layers} layers, "
              f"{cc.transformer_heads} heads, context {cc.context_length}, vocabulary {cc.vocab_size}")
        for key, value in c.provenance.items():
            print(f"  {key:<13} {value}")
    return 0


def run_convert(args: ConvertArgs) -> int:
    import liv

    model = liv.load(args.source, antialias=args.antialias)
    model.save(args.out)
    print(f"wrote {args.out}/model.safetensors and config.json ({model.num_parameters() / 1e6:.1f}M parameters)")
    return 0


def run_embed(args: EmbedArgs) -> int:
    import numpy as np
    import torch

    import liv
    from liv.data.images import read_image

    if not args.text and not args.images:
        raise ValueError("nothing to embed: give --text and/or --images")
    frames = [read_image(p) for p in args.images]  # before loading the model: a bad file fails fast
    model = liv.load(args.model, device=args.device)
    text_emb = (model.encode_texts(args.text, strict_text=args.strict_text) if args.text
                else torch.empty(0, model.embed_dim))
    if frames:
        image_emb = torch.cat([model.encode_images(f) for f in frames])
    else:
        image_emb = torch.empty(0, model.embed_dim)
    if args.normalize:
        text_emb = torch.nn.functional.normalize(text_emb, dim=-1)
        image_emb = torch.nn.functional.normalize(image_emb, dim=-1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, text_embeddings=text_emb.cpu().numpy(), image_embeddings=image_emb.cpu().numpy(),
             texts=np.array(args.text, dtype=str), images=np.array([str(p) for p in args.images], dtype=str))
    print(f"wrote {args.out}: {len(args.text)} text and {len(args.images)} image embeddings of dimension "
          f"{model.embed_dim}")
    return 0


def run_train(given: dict[str, Any]) -> int:
    from liv.train import TrainingError, train
    from liv.training.resume import resume_config

    try:
        train(resume_config(given))  # with --resume, the run's stored settings are the defaults
    except TrainingError as e:
        print(f"liv train: error: {e}", file=sys.stderr)
        return 3
    return 0


@dataclass(frozen=True)
class Command:
    """A `liv` sub-command: its options dataclass and the function that runs it.

    ``presets``: the run function receives only the explicitly given options as a dict (so it can
    layer them over a preset) instead of a dataclass instance.
    """

    args: Callable[[], type]
    run: Callable[[Any], int]
    presets: bool = False


def _lazy(module: str, name: str) -> Callable[[], Any]:
    """A getter importing ``module.name`` only when the command is used or listed."""
    def get() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)

    return get


def _run(module: str, name: str) -> Callable[[Any], int]:
    return lambda args: _lazy(module, name)()(args)


def _train_config() -> type:
    from liv.training.config import TrainConfig

    return TrainConfig


COMMANDS: dict[str, Command] = {
    "info": Command(lambda: InfoArgs, run_info),
    "convert": Command(lambda: ConvertArgs, run_convert),
    "embed": Command(lambda: EmbedArgs, run_embed),
    "train": Command(_train_config, run_train, presets=True),
    "reward": Command(_lazy("liv.eval.commands", "RewardArgs"), _run("liv.eval.commands", "run_reward")),
    "evaluate": Command(_lazy("liv.eval.commands", "EvaluateArgs"), _run("liv.eval.commands", "run_evaluate")),
    "compare": Command(_lazy("liv.eval.commands", "CompareArgs"), _run("liv.eval.commands", "run_compare")),
    "models": Command(_lazy("liv.models_command", "ModelsArgs"), _run("liv.models_command", "run_models")),
    "data check": Command(_lazy("liv.data.check", "DataCheckArgs"), _run("liv.data.check", "run_data_check")),
    "data epic-kitchens": Command(_lazy("liv.data.epic_kitchens", "EpicKitchensArgs"),
                                  _run("liv.data.epic_kitchens", "run_epic_kitchens")),
    "demo": Command(_lazy("liv.demo", "DemoArgs"), _run("liv.demo", "run_demo")),
    "bc": Command(_lazy("liv.sim.commands", "BCArgs"), _run("liv.sim.commands", "run_bc_command")),
    "plan": Command(_lazy("liv.sim.commands", "PlanArgs"), _run("liv.sim.commands", "run_plan")),
    "reproduce": Command(_lazy("liv.sim.reproduce.config", "ReproduceConfig"),
                         _run("liv.sim.reproduce.command", "run_reproduce"), presets=True),
    "sim generate": Command(_lazy("liv.sim.generate_command", "SimGenerateArgs"),
                            _run("liv.sim.generate_command", "run_sim_generate")),
}
"""Commands by name; a space in a name makes a group (``data check`` is ``liv data check``)."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser of the `liv` command line, generated from the commands' dataclasses.

    Every command is there, but only the command that ``argv`` names gets its options (all of them when
    ``argv`` is None), and one-line descriptions are read only when a list of commands may be shown
    (``liv --help``): `liv COMMAND --help` imports that command's options module alone.
    """
    from liv import __version__

    named = _named_command(argv) if argv is not None else None
    parser = ArgumentParser(prog="liv", description="LIV: language-image value learning for robots.")
    parser.add_argument("--version", action="version", version=f"liv {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, command in COMMANDS.items():
        cls = command.args() if named in (None, name) else None
        # The docstring's first paragraph (its first sentence may wrap over several lines).
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()) if cls is not None else None
        group, _, leaf = name.rpartition(" ")
        target = sub
        if group:
            if group not in groups:
                group_parser = sub.add_parser(group, help=f"{group} commands", description=f"liv {group} commands")
                groups[group] = group_parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
            target = groups[group]
        # help=None (another command was named): argparse lists no line for it, which no one sees
        # argparse %-formats a help line (not a description): a "%" in a docstring is doubled for it
        command_parser = target.add_parser(leaf, **({"help": doc.replace("%", "%%"), "description": doc}
                                                    if doc is not None else {}))
        command_parser.set_defaults(_command=name)
        if cls is None:
            continue
        # also after the command name; SUPPRESS: absent here, it does not undo a --debug given before it
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
        add_dataclass_arguments(command_parser, cls, only_given=command.presets)
    return parser


def _named_command(argv: Sequence[str]) -> str | None:
    """The key of :data:`COMMANDS` that ``argv`` names (``data check`` for ``--debug data check X``), or None.

    The command is the first one or two words that are not options: the top-level options take no value.
    """
    words = [a for a in argv if not a.startswith("-")][:2]
    for name in (" ".join(words[:1]), " ".join(words)):
        if name in COMMANDS:
            return name
    return None


def _one_line_warnings(prefix: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` printing liv's own warnings as one ``PREFIX: warning: ...`` line.

    Python's format (``file:line: Category: message`` plus the source line) points users at liv's
    internals rather than at what they typed; other libraries' warnings keep it.
    """
    from liv.models.tokenizer import TextTruncatedWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, TextTruncatedWarning):
            print(f"{prefix}: warning: {message}", file=sys.stderr if file is None else file)
        else:
            default(message, category, filename, lineno, file, line)

    return show


_DEBUG_HELP = "On an error, also print the Python traceback (for a bug report)."
INTERNAL_ERROR = 70
"""Exit status of an unexpected exception (a bug in liv; sysexits' EX_SOFTWARE). Bad input exits with 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `liv` command line -> exit status.

    Every error is one line on stderr, ``liv COMMAND: error: ...``, naming the option, file or line and
    what is wrong: status 2 for a command line that cannot be parsed, bad data, a bad model file, a file
    that cannot be read or written, a missing optional package; 130 when interrupted; and
    :data:`INTERNAL_ERROR` for any other exception, a bug. ``--debug`` prints the traceback before that
    line. Commands have their own statuses too (``liv data check`` 1 when it finds errors, ``liv train``
    3 when training fails). ``--help`` and ``--version`` raise SystemExit(0) as argparse does.
    """
    import traceback

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        ns = build_parser(argv).parse_args(argv)
    except UsageError as e:
        print(_one_line(str(e)), file=sys.stderr)
        return 2
    prefix = f"liv {ns._command}"
    try:
        return _run_command(ns, prefix)
    except KeyboardInterrupt:
        if ns.debug:
            traceback.print_exc()
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        message, status = _error_message(e, ns)
        if ns.debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_one_line(message)}", file=sys.stderr)
        return status


def _run_command(ns: argparse.Namespace, prefix: str) -> int:
    command = COMMANDS[ns._command]
    cls = command.args()
    with warnings.catch_warnings():  # restores showwarning when main() is called in-process
        warnings.showwarning = _one_line_warnings(prefix)
        return command.run(given_fields(cls, ns) if command.presets else dataclass_from_args(cls, ns))


def _error_message(e: Exception, ns: argparse.Namespace) -> tuple[str, int]:
    """(what to tell the user, exit status) for an exception out of a command."""
    from liv.models.tokenizer import TextTruncatedWarning

    # A TextTruncatedWarning arrives as an exception where a filter turns it into an error
    # (warnings.simplefilter("error", liv.TextTruncatedWarning) in a program that calls main()).
    # DataError is a ValueError.
    if isinstance(e, (ValueError, TextTruncatedWarning)):  # CheckpointError is a ValueError too
        return str(e), 2
    if isinstance(e, ModuleNotFoundError) and e.name and not e.name.startswith("liv"):  # liv's own: a bug
        return f"this needs the Python package {e.name.split('.')[0]!r}, which is not installed ({e})", 2
    if isinstance(e, OSError):
        return _os_message(e, ns), 2
    return (f"internal error, {type(e).__name__}: {e} (a bug in liv; `liv --debug ...` shows the traceback "
            f"to report)"), INTERNAL_ERROR


def _os_message(e: OSError, ns: argparse.Namespace) -> str:
    """An OSError as ``OPTION: FILE: what``, naming the option whose path holds FILE (the longest such)."""
    if e.filename is None:
        return str(e)
    failed = Path(os.path.abspath(e.filename))
    what = e.strerror or str(e)
    if isinstance(e, FileExistsError):  # "File exists" from a mkdir says little: a file is in the way
        what = "already exists" + ("" if os.path.isdir(e.filename) else " and is not a folder")
    options = []
    for dest, value in vars(ns).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, Path) and not dest.startswith("_"):
                given = Path(os.path.abspath(v))
                if given == failed or given in failed.parents:
                    options.append((len(given.parts), _option(dest, ns)))
    where = f"{max(options)[1]}: " if options else ""
    return f"{where}{e.filename}: {what}"


def _option(dest: str, ns: argparse.Namespace) -> str:
    """The command-line name of namespace attribute ``dest``."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(COMMANDS[ns._command].args())}
    return option_name(fields[dest]) if dest in fields else dest


def _one_line(message: str) -> str:
    # An exception's text may span lines (a nested error, a listing): the error stays one line.
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())

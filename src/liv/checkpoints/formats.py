"""The checkpoint formats `liv.load` reads, by the name the reader of each gives it.

The names are decided where a file is read, not guessed again: ``liv-model`` by
:mod:`liv.checkpoints.native` (``FORMAT_NAME``), the others by
:func:`liv.checkpoints.foreign.read_foreign_state_dict` (``FORMATS``). :func:`liv.load` keeps the name in
``LIVModel.source_format``; `liv info` prints it with the description below.
"""

FORMAT_DESCRIPTIONS: dict[str, str] = {
    "liv-model": "liv directory (model.safetensors + config.json)",
    "liv-release": "reference LIV model.pt",
    "liv-snapshot": "reference LIV training snapshot",
    "openai-torchscript": "OpenAI CLIP TorchScript archive",
    "clip-state-dict": "CLIP state dict (torch.save .pt/.pth)",
    "safetensors-state-dict": "CLIP state dict (.safetensors)",
    "training-checkpoint": "training checkpoint holding a CLIP state dict",
}
"""Format name -> what it is, in words."""


def describe_format(name: str | None) -> str:
    """``name``'s description (``"reference LIV model.pt"``); for None, a model that was not read from a file."""
    if name is None:
        return "none: a new model, not read from a file"
    return FORMAT_DESCRIPTIONS.get(name, name)

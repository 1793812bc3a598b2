"""`liv models`: the named pretrained models, where each comes from, its size and licence, and whether it is
cached (nothing is downloaded)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class ModelsArgs:
    """List the named pretrained models: source, size, licence and whether each is cached (downloads nothing)."""

    json: bool = False
    """Print machine-readable JSON instead of a table."""


def run_models(args: ModelsArgs) -> int:
    from liv.model_names import HF_FORM, PRETRAINED, _preset_names, cached_path

    rows: list[dict[str, Any]] = []
    for entry in PRETRAINED.values():
        cached = cached_path(entry)
        rows.append({"name": entry.name, "aliases": list(entry.aliases), "description": entry.description,
                     "source": entry.source, "size": entry.size, "license": entry.license,
                     "cached": str(cached) if cached else None,
                     "cached_bytes": cached.stat().st_size if cached else None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "ALIASES", "SIZE", "LICENCE", "CACHED", "SOURCE")]
    for r in rows:
        size = f"{r['cached_bytes'] / 2**20:.1f} MiB" if r["cached_bytes"] is not None else r["size"]
        table.append((r["name"], ", ".join(r["aliases"]) or "-", size, r["license"],
                      "yes" if r["cached"] else "no", r["source"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    print()
    for r in rows:
        print(f"{r['name']}: {r['description']}" + (f"; cached at {r['cached']}" if r["cached"] else ""))
    print(f"Every --model also takes a local path (which wins over a name), a preset ({', '.join(_preset_names())}: "
          f"random weights) or {HF_FORM}.")
    return 0

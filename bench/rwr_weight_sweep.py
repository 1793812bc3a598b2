"""Where reward-weighted BC puts its weight, for a grid of beta and horizon: the offline measurement behind
`liv bc --rwr-beta/--rwr-horizon/--rwr-max-weight`'s defaults (docs/sim_benchmark.md, RWR section).

For mixed-quality data (expert and degraded episodes of `liv sim generate --failures`), it prints, per
weighting source (the LIV value against the episode's text; the simulator's next.reward, the oracle) and
setting: the share of all weight on expert frames (the share of frames is the uniform baseline), the mean
weight of each failure kind's frames, the share of frames at the clip, and the effective sample size
(sum w)^2 / sum w^2 as a fraction of the frames (how many frames the weighted loss really learns from).
No rollouts: seconds once the embeddings are cached (the same cache `liv bc --out OUT` fills).

    .venv/bin/python bench/rwr_weight_sweep.py --data RWR_OUT/data --model RWR_OUT/liv/model \
        --cache RWR_OUT/bc_all/cache
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 5, 10, 20, 40])
    parser.add_argument("--max-weight", type=float, default=20.0)
    args = parser.parse_args()

    import liv
    from liv.data.lerobot import read_lerobot
    from liv.eval.ranking import failure_kinds
    from liv.sim.bc_embeddings import embed_dataset
    from liv.sim.bc_weights import frame_weights

    dataset = read_lerobot(args.data)
    emb = embed_dataset(liv.load(args.model), dataset, args.cache)
    episode = np.asarray(emb["episode"])
    kinds = np.array([k or "expert" for k in failure_kinds(args.data, len(dataset))], dtype=object)[episode]
    record = json.loads((args.data / "meta" / "liv_generation.json").read_text())["episodes"]
    expert = np.array([r["kind"] == "expert" for r in record])[episode]
    print(f"{len(episode)} frames, {expert.mean():.1%} of them in expert episodes; max weight {args.max_weight}\n")
    order = ["expert"] + sorted(set(kinds.tolist()) - {"expert"})
    print("| source | beta | horizon | weight on expert frames | " + " | ".join(f"mean w {k}" for k in order)
          + " | frames at the clip | ESS / N |")
    print("|---|---:|---:|---:|" + "---:|" * len(order) + "---:|---:|")
    for source in ("liv", "sim"):
        for beta in args.betas:
            for horizon in args.horizons:
                w = frame_weights(emb, source, "text", horizon, beta, args.max_weight)["weight"]
                means = " | ".join(f"{w[kinds == k].mean():.2f}" for k in order)
                ess = w.sum() ** 2 / (w ** 2).sum() / len(w)
                print(f"| {source} | {beta:g} | {horizon} | {w[expert].sum() / w.sum():.1%} | {means} | "
                      f"{(w >= args.max_weight).mean():.1%} | {ess:.2f} |")


if __name__ == "__main__":
    main()

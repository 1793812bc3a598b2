"""`liv reward --data`: the values and rewards of every episode of a dataset as one tidy parquet table whose rows
say where each episode came from (its file, and the manifest and line that list it)."""

from __future__ import annotations

import sys

from liv.cli_args import check_path
from liv.data.episodes import DataError
from liv.data.images import read_image
from liv.data.open import open_dataset
from liv.eval.commands import RewardArgs, embed_episode

REWARD_COLUMNS = {"episode": "int64", "task": "string", "frame": "int64", "goal": "string", "value": "float64",
                  "reward": "float64", "source": "string", "manifest": "string", "manifest_line": "int64",
                  "episode_index": "int64"}
"""The columns of ``liv reward --data``'s parquet file and their arrow types (see :func:`write_reward_table`)."""


def write_reward_table(args: RewardArgs) -> int:
    """`liv reward --data`: every episode against its own text and the extra goals -> one tidy parquet file.

    One row per (episode, goal, frame). Columns: ``episode`` int64 (position in the dataset, 0-based),
    ``task`` string (the episode's text), ``frame`` int64 (0-based), ``goal`` string (a goal text or goal
    image file name), ``value`` float64 (similarity or value, per --scale), ``reward`` float64 (of the step
    leaving the frame; null on the last), and the episode's origin, so every number traces back to a file:
    ``source`` string (``Episode.frames.describe()``: the video file and segment, the frame folder, or the
    LeRobot video or data file and episode), ``manifest`` string and ``manifest_line`` int64
    (``Episode.manifest`` and ``Episode.manifest_line``: the file listing the episode and its 1-based line,
    null where there is none), ``episode_index`` int64 (LeRobot's ``episode_index``; null otherwise). With
    ``--success-thresholds``, also ``success`` bool: the frame's similarity S with a text goal is at or above
    that text's threshold (null for image goals and texts the file has no threshold for, named on stderr).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from tqdm.auto import tqdm

    import liv
    from liv.reward import scores_from_embeddings

    assert args.data is not None
    if args.out.suffix.lower() != ".parquet":
        raise ValueError(f"with --data, --out must be a .parquet file, got {args.out}")
    check_path(args.out, "out_file", "--out")
    dataset = open_dataset(args.data, format=args.format, camera=args.camera)  # type: ignore[arg-type]
    if args.progress_parquet is not None and dataset.format != "lerobot":
        raise ValueError(f"--progress-parquet needs a LeRobot dataset; {args.data} is {dataset.format}")
    blank = next((e for e in dataset if not e.text.strip()), None)
    if blank is not None:  # every episode is scored against its own text
        raise DataError(blank.source, "the episode has an empty text")
    goal_images = [(p.name, read_image(p)) for p in args.goal_image]  # before loading the model: fail fast
    extras = list(dict.fromkeys(args.goal))
    texts = list(dict.fromkeys(list(dataset.texts) + extras))
    thresholds = None
    if args.success_thresholds is not None:
        from liv.eval.detection import thresholds_for_goals

        thresholds = thresholds_for_goals(args.success_thresholds, texts, require_all=False)
    model = liv.load(args.model, device=args.device)
    text_emb = dict(zip(texts, model.encode_texts(texts, strict_text=args.strict_text))) if texts else {}  # each once
    image_goals = [(name, model.encode_images(image)[0]) for name, image in goal_images]
    columns = {**REWARD_COLUMNS, **({"success": "bool_"} if thresholds is not None else {})}
    cols: dict[str, list] = {k: [] for k in columns}
    own_values: dict[int, list[float]] = {}
    for index, episode in enumerate(tqdm(dataset, desc="episodes", unit="episode", disable=None, file=sys.stderr)):
        if len(episode) == 0:
            continue
        goals = [episode.text] + [t for t in extras if t != episode.text]
        names = goals + [name for name, _ in image_goals]
        goal_emb = torch.stack([text_emb[t] for t in goals] + [e for _, e in image_goals])
        frame_emb = embed_episode(model, episode, args.batch_size, progress=False)
        v = scores_from_embeddings(frame_emb, goal_emb, scale=args.scale, gamma=args.gamma).cpu().double().numpy()
        if thresholds is not None:  # thresholds are on S, which v is unless --scale value
            s = v if args.scale == "similarity" else scores_from_embeddings(frame_emb, goal_emb).cpu().double().numpy()
        n = len(episode)
        own_values[index] = v[:, 0].tolist()
        for g, name in enumerate(names):
            cols["episode"] += [index] * n
            cols["task"] += [episode.text] * n
            cols["frame"] += range(n)
            cols["goal"] += [name] * n
            cols["value"] += v[:, g].tolist()
            cols["reward"] += (v[1:, g] - v[:-1, g]).tolist() + [None]  # leaving frame t; none after the last
            if thresholds is not None:
                t = thresholds.get(name) if g < len(goals) else None
                cols["success"] += [None] * n if t is None else (s[:, g] >= t).tolist()
        lerobot_index = episode.meta.get("episode_index") if dataset.format == "lerobot" else None
        for column, value in (("source", episode.frames.describe()), ("manifest", episode.manifest),
                              ("manifest_line", episode.manifest_line), ("episode_index", lerobot_index)):
            cols[column] += [value] * (n * len(names))
    table = pa.table({k: pa.array(cols[k], getattr(pa, t)()) for k, t in columns.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    print(f"wrote {args.out}: {table.num_rows} rows ({len(dataset)} episodes, scale {args.scale})")
    if args.progress_parquet is not None:
        from liv.eval.progress import write_progress_parquet

        path = write_progress_parquet(args.progress_parquet, dataset, own_values, str(args.model))
        print(f"wrote {path}: per-frame progress_dense for LeRobot's reward-aligned BC")
    return 0


#!/usr/bin/env bash
# The documented reward-weighted BC run of docs/sim_benchmark.md (issue: few-shot offline RL with the LIV
# reward): mixed-quality data on paired Meta-World tasks, a LIV model fine-tuned on it, then LCBC four ways:
# plain BC on every episode, RWR with the LIV reward, RWR with the simulator's dense reward (an oracle),
# and plain BC on the expert episodes only (the ceiling of filtering).
# Every stage is skipped when its output exists, so a killed run continues where it stopped:
#   nohup bench/rwr_benchmark.sh OUT > OUT.log 2>&1 &
# MODEL=path skips stage 2 (e.g. the LIV-fine-tuned model of a `liv reproduce` run on the same tasks).
set -euo pipefail
OUT=${1:-rwr_bench}
TASKS=${TASKS:-"drawer-open-v3 drawer-close-v3 faucet-open-v3 faucet-close-v3"}
EXPERTS=${EXPERTS:-10}   # expert episodes per task
DEGRADED=${DEGRADED:-10} # degraded episodes per task: noisy, stopped, gave_up, random in turn
SEEDS=${SEEDS:-"0 1 2"}
ROLLOUTS=${ROLLOUTS:-5}  # per task, seed and checkpoint
LIV=${LIV:-.venv/bin/liv}
mkdir -p "$OUT"
stamp() { date -u +%H:%M:%S; }

# 1. data: experts + degraded episodes per task, 64 px closeup camera, every step recorded (next.reward too)
if [ ! -f "$OUT/data/meta/info.json" ]; then
  echo "$(stamp) generate"
  $LIV sim generate --tasks $TASKS --episodes "$EXPERTS" --failures "$DEGRADED" \
    --failure-kinds noisy stopped gave_up random --camera closeup --size 64 64 --workers 2 --seed 7 \
    --out "$OUT/data"
fi

# 2. a LIV model fine-tuned on the mixed data from random clip-tiny weights (the demo's recipe)
if [ -z "${MODEL:-}" ] && [ ! -f "$OUT/liv/model/config.json" ]; then
  echo "$(stamp) train"
  $LIV train --data "$OUT/data" --init clip-tiny --objective liv --steps 600 --batch-size 32 --lr 3e-4 \
    --lr-schedule cosine --augment none --out "$OUT/liv"
fi
MODEL=${MODEL:-$OUT/liv/model}

# 3. LCBC on the frozen model: every episode (plain, LIV-weighted, simulator-weighted; advantages over 10
#    and over 20 steps, the default chosen by bench/rwr_weight_sweep.py), then experts only
if [ ! -f "$OUT/bc_all/bc.json" ]; then
  echo "$(stamp) bc (all episodes)"
  $LIV bc --data "$OUT/data" --model "$MODEL" --train-episodes all --weighting none rwr sim --no-proprio \
    --rwr-horizon 10 --seeds $SEEDS --episodes "$ROLLOUTS" --max-steps 150 --out "$OUT/bc_all"
fi
if [ ! -f "$OUT/bc_h20/bc.json" ]; then
  echo "$(stamp) bc (all episodes, weights over 20 steps)"
  $LIV bc --data "$OUT/data" --model "$MODEL" --train-episodes all --weighting rwr sim --no-proprio \
    --rwr-horizon 20 --seeds $SEEDS --episodes "$ROLLOUTS" --max-steps 150 --out "$OUT/bc_h20"
fi
if [ ! -f "$OUT/bc_experts/bc.json" ]; then
  echo "$(stamp) bc (expert episodes only)"
  $LIV bc --data "$OUT/data" --model "$MODEL" --train-episodes successful --no-proprio \
    --seeds $SEEDS --episodes "$ROLLOUTS" --max-steps 150 --out "$OUT/bc_experts"
fi
echo "$(stamp) done"

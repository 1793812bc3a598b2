#!/usr/bin/env bash
# The documented kitchen run of docs/sim_benchmark.md: data, a LIV model, LCBC and MPPI planning.
# Every stage is skipped when its output exists (generation and embedding resume on their own), so a
# killed run continues where it stopped:  nohup bench/kitchen_benchmark.sh OUT > OUT.log 2>&1 &
set -euo pipefail
OUT=${1:-kitchen_bench}
TASKS=${TASKS:-"kitchen_micro_open kitchen_sdoor_open kitchen_ldoor_open kitchen_knob1_on kitchen_light_on"}  # all five
LIV=${LIV:-.venv/bin/liv}
mkdir -p "$OUT"
stamp() { date -u +%H:%M:%S; }

# 1. data: 20 expert demonstrations + 4 failures per task, 64 px overview camera, every step recorded
if [ ! -f "$OUT/data/meta/info.json" ]; then
  echo "$(stamp) generate"
  $LIV sim generate --suite kitchen --tasks $TASKS --episodes 20 --failures 4 --size 64 64 --workers 2 \
    --seed 0 --out "$OUT/data"
fi

# 2. a LIV model fine-tuned on that data from random clip-tiny weights (the demo's size)
if [ ! -d "$OUT/liv/model" ]; then
  echo "$(stamp) train"
  $LIV train --data "$OUT/data" --init clip-tiny --objective liv --steps 600 --batch-size 32 --lr 3e-4 \
    --lr-schedule cosine --out "$OUT/liv"
fi

# 3. LCBC (the paper's kitchen settings: MLP 256-256, batch 32, lr 1e-3, proprioception): LIV model vs
#    random weights, text vs one-hot; 2 training seeds, 5 rollouts per task and checkpoint in new starts
if [ ! -f "$OUT/bc/bc.json" ]; then
  echo "$(stamp) bc"
  $LIV bc --data "$OUT/data" --model "$OUT/liv/model" --model clip-tiny --one-hot --seeds 0 1 --episodes 5 \
    --out "$OUT/bc"
fi

# 4. MPPI (horizon 50, 128 samples, 1 iteration; the paper's warm start) scored by the LIV text reward,
#    against the same with a random other task's text as the goal (the paper's Table 9 control);
#    replanning every 10 steps to fit this CPU
for goal in own random; do
  if [ ! -f "$OUT/plan_$goal/plan.json" ]; then
    echo "$(stamp) plan ($goal goal)"
    flag=$([ "$goal" = random ] && echo --random-goal || echo --no-random-goal)
    $LIV plan --model "$OUT/liv/model" --tasks $TASKS --planner mppi --iterations 1 --replan-every 10 \
      --episodes 2 $flag --out "$OUT/plan_$goal"
  fi
done
echo "$(stamp) done"

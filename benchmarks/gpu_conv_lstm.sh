#!/usr/bin/env bash
# The conv_lstm GPU check as one script, for a GPU machine without network (run from the repository root):
# train the full (faithful) preset until DEADLINE seconds (Ctrl-C: a checkpoint is saved), score the best
# checkpoint on the test movies, draw the rollout of movie 1004 and score the 8-frame rollout on 200 test
# movies, then bench on the GPU. Work happens in WORK; only the 8 files worth keeping are copied to the top
# of OUT, so that little needs copying back: metrics.jsonl, the log, the best checkpoint, evaluate.json,
# predict.txt, the PNG and GIF, bench.json.
#     OUT=gpu-out bash benchmarks/gpu_conv_lstm.sh            # DEVICE=cuda DEADLINE=400 by default
#     OUT=gpu-out DEVICE=cpu DEADLINE=20 EXTRA="--preset tiny" WHICH=10 FRAMES=3 AHEAD=3 \
#         bash benchmarks/gpu_conv_lstm.sh  # a dry run on a tiny model
set -u
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-400}
EXTRA=${EXTRA:-}
PY=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d)}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} RNNZOO_HOME=$WORK/home RNNZOO_RUNS=$WORK/runs
(nvidia-smi --query-gpu=name,memory.total --format=csv || true) > "$WORK/gpu.txt" 2>&1
$PY benchmarks/train_all.py --device "$DEVICE" --jobs "conv_lstm:0${EXTRA:+:$EXTRA}" --deadline "$DEADLINE" \
    --runs "$WORK/runs" --out "$WORK/train.json" > "$WORK/train_all.txt" 2>&1
RUN=$(ls -d "$WORK"/runs/conv_lstm/*/ | head -n 1)
cp "$RUN/metrics.jsonl" "$RUN/checkpoints/best.pt" "$OUT/"
{ cat "$WORK/gpu.txt"; cat "$WORK"/runs/logs/*.log; cat "$WORK/train_all.txt"; } > "$OUT/train.log"
$PY -m rnnzoo evaluate "$RUN" --device "$DEVICE" --json > "$OUT/evaluate.json" 2>&1
$PY -m rnnzoo predict "$RUN" --which "${WHICH:-1004}" --frames "${FRAMES:-7}" --ahead "${AHEAD:-8}" --test-movies 200 --out "$OUT" \
    > "$OUT/predict.txt" 2>&1
$PY -m rnnzoo bench conv_lstm $EXTRA --device "$DEVICE" --json > "$OUT/bench.json" 2>&1
cat "$OUT/evaluate.json" "$OUT/predict.txt" "$OUT/bench.json"

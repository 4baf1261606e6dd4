#!/usr/bin/env bash
# The conv_lstm GPU check, as one script for a borrowed GPU machine (no network; run from the repo root):
# train the full (faithful) preset until DEADLINE seconds, score the best checkpoint on the test movies,
# draw the rollout of movie 1004 and score the 8-frame rollout on 200 test movies, then bench on the GPU.
#     OUT=/tmp/out bash benchmarks/gpu_conv_lstm.sh            # DEVICE=cuda DEADLINE=400 by default
#     OUT=/tmp/out DEVICE=cpu DEADLINE=20 EXTRA="--preset tiny" bash benchmarks/gpu_conv_lstm.sh  # a dry run
set -u
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-400}
EXTRA=${EXTRA:-}
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} RNNZOO_HOME=$OUT/home RNNZOO_RUNS=$OUT/runs
(nvidia-smi --query-gpu=name,memory.total --format=csv || true) > "$OUT/gpu.txt" 2>&1
$PY -c "import torch; print('torch', torch.__version__)" | tee "$OUT/torch.txt"
$PY benchmarks/train_all.py --device "$DEVICE" --jobs "conv_lstm:0${EXTRA:+:$EXTRA}" --deadline "$DEADLINE" \
    --runs "$OUT/runs" --out "$OUT/train.json" > "$OUT/train_all.txt" 2>&1
RUN=$(ls -d "$OUT"/runs/conv_lstm/*/ | head -n 1)
$PY -m rnnzoo evaluate "$RUN" --device "$DEVICE" --json > "$OUT/evaluate.json" 2>> "$OUT/errors.txt"
$PY -m rnnzoo predict "$RUN" --which 1004 --frames 7 --ahead 8 --test-movies 200 --out "$OUT/pictures" \
    > "$OUT/predict.txt" 2>> "$OUT/errors.txt"
$PY -m rnnzoo bench conv_lstm $EXTRA --device "$DEVICE" --json > "$OUT/bench.json" 2>> "$OUT/errors.txt"
rm -f "$RUN"/checkpoints/last.pt
cat "$OUT/train_all.txt" "$OUT/evaluate.json" "$OUT/predict.txt" "$OUT/bench.json" "$OUT/errors.txt"

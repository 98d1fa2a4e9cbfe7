#!/usr/bin/env bash
# The GPU path end to end, on a machine with CUDA: training speed on the GPU against the CPU loop,
# then `lnmdn train`, `--resume`, `lnmdn eval` and `lnmdn bench` with `--device cuda`, on the
# embedded Push-T data (no dataset build, no download). Each step runs even when one before it
# failed; the summary at the end lists the steps and their exit codes, and the logs and JSON land
# in OUT (default runs/gpu_path), the run folders in RUNS (default OUT/runs). The tests never
# need a GPU; this is the check for one.
#
#     bash benchmarks/gpu_path.sh                 # in a checkout with the agents extra installed
#     OUT=/tmp/gpu LNMDN="python3 -m lnmdn_agents.cli" bash benchmarks/gpu_path.sh
#
# LNMDN is the command line (default: lnmdn), PYTHON runs the benchmark (default: python3),
# DEVICE is the GPU (default: cuda).
set -u
OUT=${OUT:-runs/gpu_path}
LNMDN=${LNMDN:-lnmdn}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-$OUT/runs}
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1
summary=()

step() {  # step NAME COMMAND...: run, log to OUT/NAME.log, time it, keep going on failure
    local name=$1
    shift
    local t0=$SECONDS
    echo "=== $name: $*"
    "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    summary+=("$(printf '%-16s rc=%-3s %4ds' "$name" "$rc" $((SECONDS - t0)))")
}

step device "$PYTHON" -c "import torch; print(torch.__version__, torch.version.cuda, \
torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory // 2**30, 'GiB')"

# Samples/s of one optimiser step per policy: the CPU baseline, then the GPU rows.
step train_speed "$PYTHON" benchmarks/train_speed.py --device "$DEVICE" --no-compile --rounds 3 \
    --json "$OUT/train_speed_cuda.json"

# The recipes' runs on the GPU, shortened: 3 epochs, closed-loop validation on 10 episodes
# (its rollouts step the CPU simulator), resumable checkpoints every epoch; then one epoch more
# by --resume.
for policy in liquid_mdn diffusion lwd; do
    step "train_$policy" $LNMDN train --recipe "pusht/$policy" --device "$DEVICE" --epochs 3 \
        --eval-every 3 --eval-episodes 10 --checkpoint-every 1 --output-dir "$RUNS" \
        --run-name "$policy" --no-progress --overwrite
    step "resume_$policy" $LNMDN train --recipe "pusht/$policy" --device "$DEVICE" --epochs 4 \
        --eval-every 3 --eval-episodes 10 --checkpoint-every 1 --output-dir "$RUNS" \
        --run-name "$policy" --no-progress --resume
done
step train_bf16 $LNMDN train --recipe pusht/diffusion --device "$DEVICE" --precision bfloat16 \
    --epochs 2 --eval-every 2 --eval-episodes 10 --output-dir "$RUNS" --run-name diffusion_bf16 \
    --no-progress --overwrite

# Offline metrics, closed loop and latency with the policy on the GPU.
step eval $LNMDN eval "$RUNS/liquid_mdn" "$RUNS/diffusion" "$RUNS/lwd" --device "$DEVICE" \
    --episodes 10 --n-envs 10 --max-windows 512 --no-progress

# The bench: cells trained on the GPU (evaluated on the CPU, as the bench does).
step bench $LNMDN bench --preset quick --device "$DEVICE" --epochs 2 --episodes 10 \
    --out "$RUNS/bench" --no-progress

echo "=== summary"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"

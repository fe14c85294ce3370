#!/usr/bin/env bash
# The distributed checks of .ci/run (docs/distributed.md), on loopback with 2 ranks (oversubscribed):
#  1. 20 SGD steps of an MLP: 2 ranks x global batch B agree with 1 process at batch B to 1e-5 relative;
#  2. two 2-rank runs with the same seed are bit-identical;
#  3. a 2-rank run that fails at step 15 (one rank throws) leaves its step-10 checkpoint; resuming it
#     with 2 ranks is bit-identical to the uninterrupted run, with 4 ranks it agrees to 1e-5;
#  4. a global batch not divisible by the ranks is a one-line error; no mpirun is a one-line error;
#  6. a small CNN on the digits (batch norm synchronized across the ranks, dropout masks from the global
#     sample index): 2 ranks x batch 32 agree with 1 process to 1e-5 after 20 steps (parameters and running
#     statistics), and a second 2-rank run is bit-identical (the progress thread and
#     5 buckets in flight; the MNIST preset is measured in docs/distributed.md, its 10,000-image evaluation
#     is too slow here).
#  7. train text --distributed: a small GPT on names agrees with 1 process to 1e-5 after 20 SGD steps;
#     so does a 2-layer LSTM with --bptt (each rank carries its own streams' state) and --dropout 0.2
#     (masks from the global row index); --minutes ends every rank after the same step (rank 0's clock).
#  8. train text --distributed --resume: the LSTM (--bptt, --dropout) and the GPT of step 7 on 2 ranks fail
#     at step 15 and leave their step-10 checkpoints (the LSTM's with every rank's rows of the carried
#     state); resumed to step 20 with 2 ranks they are bit-identical to step 7's uninterrupted runs (model and
#     carried state), resumed with 4 ranks (LSTM) and 1 process (GPT) they agree to 1e-5.
# Usage: tools/distributed-check.sh path/to/Backprop.Cli.dll
set -euo pipefail
dll=$1
# mpirun gives the ranks a pseudo-terminal, on which .NET writes a keypad escape before the first line.
export TERM=dumb
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run() { dotnet "$dll" train "$@"; }
mrun() { local n=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$n" dotnet "$dll" train "$@" --distributed; }
cmp_() { python3 "$here/compare_checkpoints.py" "$@" --prefix model.; }
common=(--model mlp:64-32-10 --optimizer sgd --lr 0.1 --limit 640 --seed 3 --quiet)
base=("${common[@]}" --batch-size 32)

echo "-- 1. 20 steps: 2 ranks x batch 32 against 1 process x batch 32"
run "${base[@]}" --epochs 1 --threads 1 --save "$dir/single.safetensors"
mrun 2 "${base[@]}" --epochs 1 --save "$dir/d2.safetensors"
cmp_ "$dir/d2.safetensors" "$dir/single.safetensors" --rtol 1e-5

echo "-- 2. the same 2-rank run again: bit-identical"
mrun 2 "${base[@]}" --epochs 1 --save "$dir/d2b.safetensors"
cmp_ "$dir/d2.safetensors" "$dir/d2b.safetensors" --exact

echo "-- 3. resume: uninterrupted 2 epochs against a run failing at step 15 and resumed from its step-10 checkpoint"
mrun 2 "${base[@]}" --epochs 2 --save "$dir/full.safetensors"
if BACKPROP_DISTRIBUTED_FAULT=1:15 mrun 2 "${base[@]}" --epochs 2 --save "$dir/part.safetensors" --save-every 10 > "$dir/fault.out" 2>&1; then
  echo "the run with a failing rank exited with 0"; cat "$dir/fault.out"; exit 1
fi
grep -q "error: rank 1 of 2 failed: InvalidOperationException: injected fault" "$dir/fault.out" || { echo "no line names rank 1:"; cat "$dir/fault.out"; exit 1; }
grep "error: rank 1" "$dir/fault.out"
cp "$dir/part.safetensors" "$dir/part4.safetensors"
mrun 2 --resume "$dir/part.safetensors" --save "$dir/part.safetensors" --quiet
cmp_ "$dir/part.safetensors" "$dir/full.safetensors" --exact
mrun 4 --resume "$dir/part4.safetensors" --save "$dir/part4.safetensors" --quiet
cmp_ "$dir/part4.safetensors" "$dir/full.safetensors" --rtol 1e-5

echo "-- 4. one-line errors"
out=$(mrun 2 "${common[@]}" --epochs 1 --batch-size 33 2>&1 || true)
[ "$(echo "$out" | grep -c "^error:")" -eq 1 ] || { echo "expected one error line:"; echo "$out"; exit 1; }
echo "$out" | grep -E "^error: --batch-size 33 is the global batch and must be divisible by the 2 ranks" || { echo "$out"; exit 1; }
out=$(run "${base[@]}" --epochs 1 --distributed 2>&1 || true)
echo "$out" | grep -E "^error: --distributed: this process was not started by mpirun" || { echo "$out"; exit 1; }

echo "-- 5. SIGKILL of a rank mid-epoch"
"$here/distributed-fault.sh" "$dll"
echo "-- 6. a CNN with batch norm and dropout (SyncBatchNorm, masks from the global sample index): 2 ranks x batch 32 against 1 process, 20 steps"
cnn=(--model cnn:1x8x8-c8-bn-relu-m2-c16-bn-relu-d0.25-10 --optimizer sgd --lr 0.05 --batch-size 32 --limit 640 --epochs 1 --seed 5 --quiet)
run "${cnn[@]}" --threads 1 --save "$dir/cnn1.safetensors"
# 1 KiB buckets: 5 gradient all-reduces in flight during backward, between the batch-norm layers' blocking ones
BACKPROP_BUCKET_KB=1 mrun 2 "${cnn[@]}" --save "$dir/cnn2.safetensors"
cmp_ "$dir/cnn2.safetensors" "$dir/cnn1.safetensors" --rtol 1e-5
BACKPROP_BUCKET_KB=1 mrun 2 "${cnn[@]}" --save "$dir/cnn2b.safetensors"
cmp_ "$dir/cnn2.safetensors" "$dir/cnn2b.safetensors" --exact
echo "-- 7. train text: a GPT on names (--lines: windows with padding, so the ranks' target counts differ), 2 ranks x batch 16 against 1 process, 20 steps"
txt=(text --model gpt --lines --data "$here/../../shared/data/names/names.txt" --layers 1 --width 32 --heads 2 --context 16 --batch-size 16
  --steps 20 --eval-every 10 --samples 0 --seed 3 --quiet --optimizer sgd --lr 0.5)
run "${txt[@]}" --threads 1 --save "$dir/txt1.safetensors"
mrun 2 "${txt[@]}" --save "$dir/txt2.safetensors"
cmp_ "$dir/txt2.safetensors" "$dir/txt1.safetensors" --rtol 1e-5
head -c 30000 "$here/../../shared/data/tinyshakespeare/input.txt" > "$dir/s.txt"
lstm=(text --model lstm --bptt --dropout 0.2 --data "$dir/s.txt" --layers 2 --width 32 --embedding 16 --context 16 --batch-size 8
  --eval-every 10 --samples 0 --seed 3 --quiet --optimizer sgd --lr 0.5)
run "${lstm[@]}" --steps 20 --threads 1 --save "$dir/lstm1.safetensors"
mrun 2 "${lstm[@]}" --steps 20 --save "$dir/lstm2.safetensors"
cmp_ "$dir/lstm2.safetensors" "$dir/lstm1.safetensors" --rtol 1e-5
# --minutes: ranks that stopped at different steps would wait on each other until the timeout (30 s);
# a run that never stops is ended after 120 s
steps=$(BACKPROP_DISTRIBUTED_TIMEOUT=30 timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 dotnet "$dll" train "${lstm[@]}" \
  --steps 100000 --minutes 0.05 --json --distributed | tail -n 1 |
  python3 -c "import json, sys; print(json.load(sys.stdin)['steps'])")
[ "$steps" -ge 1 ] && [ "$steps" -lt 100000 ] || { echo "--minutes under --distributed: $steps steps"; exit 1; }
echo "--minutes 0.05 on 2 ranks: $steps steps"
echo "-- 8. train text --resume: 2-rank runs failing at step 15, resumed from step 10 with 2 ranks (bit-identical), 4 ranks and 1 process (1e-5)"
# the uninterrupted runs are step 7's (lstm2, txt2: 20 steps on 2 ranks, saved at 10 and 20)
resume_check() {
  local name=$1 full=$2 other=$3; shift 3
  if BACKPROP_DISTRIBUTED_FAULT=1:15 mrun 2 "$@" --save "$dir/$name-part.safetensors" > "$dir/$name-fault.out" 2>&1; then
    echo "the $name run with a failing rank exited with 0"; cat "$dir/$name-fault.out"; exit 1
  fi
  grep -q "error: rank 1 of 2 failed: InvalidOperationException: injected fault" "$dir/$name-fault.out" || { echo "no line names rank 1:"; cat "$dir/$name-fault.out"; exit 1; }
  cp "$dir/$name-part.safetensors" "$dir/$name-other.safetensors"
  mrun 2 text --resume "$dir/$name-part.safetensors" --save "$dir/$name-part.safetensors" --quiet
  python3 "$here/compare_checkpoints.py" "$dir/$name-part.safetensors" "$full" --exact
  if [ "$other" = 1 ]; then run text --resume "$dir/$name-other.safetensors" --save "$dir/$name-other.safetensors" --quiet
  else mrun "$other" text --resume "$dir/$name-other.safetensors" --save "$dir/$name-other.safetensors" --quiet; fi
  python3 "$here/compare_checkpoints.py" "$dir/$name-other.safetensors" "$full" --rtol 1e-5
}
resume_check lstm "$dir/lstm2.safetensors" 4 "${lstm[@]}" --steps 20
resume_check gpt "$dir/txt2.safetensors" 1 "${txt[@]}"
echo "-- distributed checks passed"

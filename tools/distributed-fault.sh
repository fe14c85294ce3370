#!/usr/bin/env bash
# The fault check of docs/distributed.md: SIGKILL one rank of a 2-rank job mid-epoch; the job must end
# within 30 s with a line naming the failed rank, and the last checkpoint must load and resume.
# Usage: tools/distributed-fault.sh path/to/Backprop.Cli.dll
set -uo pipefail
dll=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpirun_() { mpirun --allow-run-as-root --oversubscribe "$@"; }
args=(--model mlp:64-256-10 --optimizer sgd --lr 0.05 --batch-size 8 --limit 800 --epochs 30 --seed 3 --quiet
      --save "$dir/ck.safetensors" --save-every 40 --distributed)
mpirun --allow-run-as-root --oversubscribe -np 2 dotnet "$dll" train "${args[@]}" > "$dir/out" 2>&1 &
job=$!
# Wait for the first checkpoint, then for a little more training (mid-epoch).
for _ in $(seq 1 600); do [ -f "$dir/ck.safetensors" ] && break; sleep 0.1; done
[ -f "$dir/ck.safetensors" ] || { echo "no checkpoint after 60 s"; cat "$dir/out"; exit 1; }
sleep 1
victim=""
# mpirun starts the ranks of this machine as its own children; rank 1 is the one whose environment says so.
for p in $(ps -o pid= --ppid "$job"); do
  if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=$p; fi
done
[ -n "$victim" ] || { echo "rank 1 not found"; cat "$dir/out"; exit 1; }
t0=$(date +%s.%N)
kill -KILL "$victim"
for _ in $(seq 1 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then echo "the job still runs 30 s after SIGKILL of rank 1"; kill -KILL "$job"; cat "$dir/out"; exit 1; fi
wait "$job"; rc=$?
t1=$(date +%s.%N)
secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
echo "SIGKILL of rank 1 (pid $victim): the job ended in $secs s with exit code $rc; its message:"
grep -E "rank 1|exited on signal" "$dir/out" | head -3
grep -qE "process rank 1 .*exited on signal 9|rank 1 of 2" "$dir/out" || { echo "no line names rank 1:"; cat "$dir/out"; exit 1; }
[ "$rc" -ne 0 ] || { echo "the job exited with 0 after a rank was killed"; exit 1; }
# The last good checkpoint loads and resumes (one process, one more epoch than it recorded).
epoch=$(python3 -c "import json,struct,sys; raw=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',raw[:8])[0]; print(json.loads(json.loads(raw[8:8+n])['__metadata__']['checkpoint'])['epoch'])" "$dir/ck.safetensors")
echo "the checkpoint left is from epoch $epoch (mid-epoch $((epoch + 1))); resuming it to the end of epoch $((epoch + 1))"
mpirun_ -np 2 dotnet "$dll" train --resume "$dir/ck.safetensors" --epochs $((epoch + 1)) --quiet --distributed > "$dir/resume" 2>&1 ||
  { echo "resume failed:"; cat "$dir/resume"; exit 1; }
tail -1 "$dir/resume"

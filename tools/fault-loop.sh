#!/usr/bin/env bash
# Bounded end-to-end fault loop (docs/reliability.md): random SIGKILLs during training with
# --save-every, SIGINT and SIGTERM, and two concurrent writers of one checkpoint, each followed by a
# resume whose final JSON (loss and accuracy history, steps) must equal an uninterrupted run's.
# Usage: tools/fault-loop.sh path/to/Backprop.Cli.dll [rounds]   (fails loudly, exit 1)
set -euo pipefail
# Background jobs are started as `dotnet ... &`, never through a shell function, so that $! is the
# training process itself and the signals reach it (not a subshell that would leave it running).
# Job control: without it, bash starts background jobs with SIGINT ignored, and SIGINT would never arrive.
set -m
dll=${1:?usage: tools/fault-loop.sh Backprop.Cli.dll [rounds]}
rounds=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bp() { dotnet "$dll" "$@"; }
run=(train xor --epochs 100 --threads 1 --quiet --json)
fail() { echo "FAULT LOOP FAILED: $*" >&2; exit 1; }
# The final line's history (train/test loss, accuracy), accuracy and step count.
summary() {
  python3 - "$1" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().strip().splitlines()
d = json.loads(lines[-1]) if lines else {}
print(json.dumps([[h["epoch"], h["train_loss"], h["test_loss"], h["test_accuracy"]] for h in d.get("history", [])]), d.get("test_accuracy"), d.get("steps"))
PY
}
bp "${run[@]}" --save "$work/ref" > "$work/ref.json" || fail "the reference run failed"
expected=$(summary "$work/ref.json")
# Continues the checkpoint (or starts again when the kill came before its first save) to the end.
finish() {
  local ck=$1 out=$2
  if [ -f "$ck" ]; then bp train --resume "$ck" --save "$ck" --epochs 100 --quiet --json > "$out" || fail "resume of $ck failed"
  else bp "${run[@]}" --save "$ck" > "$out" || fail "the fresh run failed"; fi
  [ "$(summary "$out")" = "$expected" ] || fail "$3: the resumed run differs from the uninterrupted one: $(summary "$out") vs $expected"
  echo "ok: $3"
}
delay() { python3 -c "import random; print(round(random.uniform($1, $2), 2))"; }

signalled=0 killed=0
for r in $(seq 1 "$rounds"); do
  # SIGKILL at a random moment, twice in a chain (the resume is killed too), then resume to the end.
  ck="$work/kill$r"
  dotnet "$dll" "${run[@]}" --save "$ck" --save-every 3 > /dev/null 2>&1 & pid=$!
  sleep "$(delay 0.3 1.2)"; kill -KILL "$pid" 2>/dev/null || true
  set +e; wait "$pid"; [ $? = 137 ] && killed=$((killed + 1)); set -e
  if [ -f "$ck" ]; then
    dotnet "$dll" train --resume "$ck" --save "$ck" --save-every 3 --epochs 100 --quiet > /dev/null 2>&1 & pid=$!
    sleep "$(delay 0.5 1.5)"; kill -KILL "$pid" 2>/dev/null || true; wait "$pid" || true
  fi
  finish "$ck" "$work/kill$r.json" "round $r: SIGKILL"

  # SIGINT and SIGTERM: 130 / 143 (or 0 when the run was already done), then resume.
  for sig in INT TERM; do
    ck="$work/$sig$r"
    dotnet "$dll" "${run[@]}" --save "$ck" > /dev/null 2> "$work/$sig$r.err" & pid=$!
    # After the first save (training has begun, the handlers are in place), at a random moment.
    for _ in $(seq 1 600); do [ -f "$ck" ] || ! kill -0 "$pid" 2>/dev/null && break; sleep 0.02; done
    sleep "$(delay 0 0.3)"; kill -"$sig" "$pid" 2>/dev/null || true
    set +e; wait "$pid"; rc=$?; set -e
    want=$([ "$sig" = INT ] && echo 130 || echo 143)
    [ "$rc" = "$want" ] || [ "$rc" = 0 ] || fail "round $r: SIG$sig gave exit code $rc: $(cat "$work/$sig$r.err")"
    if [ "$rc" != 0 ]; then
      signalled=$((signalled + 1))
      grep -q "^interrupted by SIG$sig at epoch" "$work/$sig$r.err" || fail "round $r: SIG$sig ended the run without its message: $(cat "$work/$sig$r.err")"
    fi
    finish "$ck" "$work/$sig$r.json" "round $r: SIG$sig (exit $rc)"
  done

  # Two writers of one checkpoint at once: both finish, and what is left resumes exactly.
  ck="$work/two$r"
  dotnet "$dll" "${run[@]}" --save "$ck" --save-every 2 > "$work/twoA$r.json" & a=$!
  dotnet "$dll" "${run[@]}" --save "$ck" --save-every 3 > "$work/twoB$r.json" & b=$!
  wait "$a" || fail "round $r: writer A failed"
  wait "$b" || fail "round $r: writer B failed"
  [ "$(summary "$work/twoA$r.json")" = "$expected" ] && [ "$(summary "$work/twoB$r.json")" = "$expected" ] || fail "round $r: a concurrent writer's run differs"
  finish "$ck" "$work/two$r.json" "round $r: two writers"
  ls "$ck".tmp-* > /dev/null 2>&1 && fail "round $r: temporary files left: $(ls "$ck".tmp-*)"
done
# A full disk: a 4 KiB tmpfs holds one small checkpoint but not a second beside it. Mounting needs
# root (CI runs as root); where it is refused, InterruptTests covers the same with its ENOSPC test hook.
full=$(mktemp -d)
if mount -t tmpfs -o size=4k tmpfs "$full" 2>/dev/null; then
  set +e; bp train xor --epochs 5 --threads 1 --quiet --save "$full/ck" > /dev/null 2> "$work/full.err"; rc=$?; set -e
  cp "$full/ck" "$work/fullck" 2>/dev/null || true
  leftover=$(ls "$full" | grep -c '\.tmp-' || true)
  umount "$full"; rmdir "$full"
  [ "$rc" = 74 ] || fail "full disk: exit code $rc (want 74): $(cat "$work/full.err")"
  [ "$(wc -l < "$work/full.err")" = 1 ] && grep -q "^error: --save $full/ck: cannot write the checkpoint at step [0-9]*: no space left on the device; the checkpoint written at step [0-9]* is left as it was\.$" "$work/full.err" \
    || fail "full disk: not the one-line message: $(cat "$work/full.err")"
  [ "$leftover" = 0 ] || fail "full disk: $leftover temporary file(s) left"
  bp train --resume "$work/fullck" --epochs 5 --quiet > /dev/null || fail "full disk: the checkpoint left behind does not resume"
  echo "ok: full disk (a 4 KiB tmpfs): exit 74, one line, the last checkpoint resumes"
else
  rmdir "$full"
  echo "note: full-disk round not run (no permission to mount a tmpfs here); InterruptTests.AFullDiskEndsTheRunWithOneLineAndLeavesTheLastCheckpoint covers it"
fi
[ "$killed" -gt 0 ] || fail "no SIGKILL landed during training (every run had finished): lengthen the runs"
[ "$signalled" -gt 0 ] || fail "no SIGINT or SIGTERM landed during training (every run had finished): lengthen the runs"
echo "fault loop: $rounds rounds passed ($killed of $rounds first SIGKILLs and $signalled of $((2 * rounds)) SIGINT/SIGTERM landed during training)"

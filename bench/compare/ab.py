#!/usr/bin/env python3
"""Two builds of Backprop side by side: the comparison's Backprop rows (models and GEMM), run in
alternating rounds (before, after, before, after, ...) so that drift of the machine hits both alike.

Usage: python3 bench/compare/ab.py --before OLD/Backprop.Cli.dll --after NEW/Backprop.Cli.dll [--rounds 5] [--threads 2]
Build each with `dotnet build -c Release src/Backprop.Cli` (an old commit in a git worktree).
Prints a Markdown table: median of each side, after/before, and the allocation per warm step.
"""
import argparse
import json
import statistics
import subprocess

ROWS = [("model", "mlp-small"), ("model", "mlp-256"), ("model", "window-lm"), ("model", "cnn"), ("gemm", "1024"), ("gemm", "2048")]


def run(dll, kind, what, threads):
    args = ["dotnet", dll, "bench", kind] + ([what] if kind == "model" else ["--size", what]) + ["--threads", str(threads), "--json"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return (r["samples_per_second"] if kind == "model" else r["gflops"]), r.get("allocated_bytes_per_step")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default="", help="comma-separated subset, e.g. mlp-small,window-lm,1024")
    a = ap.parse_args()
    print("| row | before (median) | after (median) | after/before | alloc/step before, after (B) |")
    print("|---|---:|---:|---:|---:|")
    rows = [r for r in ROWS if not a.rows or r[1] in a.rows.split(",")]
    for kind, what in rows:
        res = {"before": [], "after": []}
        alloc = {}
        for _ in range(a.rounds):
            for side in ("before", "after"):
                v, b = run(getattr(a, side), kind, what, a.threads)
                res[side].append(v)
                alloc[side] = b
        mb, ma = statistics.median(res["before"]), statistics.median(res["after"])
        unit = "GFLOP/s" if kind == "gemm" else ("tokens/s" if what == "window-lm" else "samples/s")
        name = f"GEMM {what}^3 ({unit})" if kind == "gemm" else f"{what} ({unit})"
        al = f"{alloc.get('before')}, {alloc.get('after')}" if kind == "model" else "-"
        print(f"| {name} | {mb:,.0f} | {ma:,.0f} | {ma / mb:.3f} | {al} |", flush=True)


if __name__ == "__main__":
    main()

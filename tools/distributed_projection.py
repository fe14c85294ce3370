#!/usr/bin/env python3
"""Projected step time and scaling efficiency of data-parallel training (docs/distributed.md).

Ring all-reduce cost model (Patarasuk & Yuan; what Open MPI's ring and NCCL do for large buffers):
    T_ar(N) = 2 (N-1)/N * S / BW  +  2 (N-1) * alpha
S the gradient bytes (4 per parameter), BW the link bandwidth, alpha the per-message latency.
Strong scaling at a fixed global batch B: each of N machines computes B/N samples,
    T_step(N) = T_1 / N + T_ar(N)               (no overlap: what was measured here)
    T_step(N) = max(T_1 / N, T_ar(N))           (perfect overlap: the bound)
efficiency E(N) = T_1 / (N * T_step(N)).

Usage: distributed_projection.py --params P --step-ms T1 [--alpha-us 10] [--name NAME]
T1 is the measured single-process step time at the global batch; alpha is an assumption (not
measured here: loopback latency says nothing about a real network), shown in the output.
"""
import argparse

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=int, required=True)
    ap.add_argument("--step-ms", type=float, required=True)
    ap.add_argument("--alpha-us", type=float, default=10.0)
    ap.add_argument("--name", default="model")
    a = ap.parse_args()
    S = 4 * a.params
    t1 = a.step_ms / 1e3
    alpha = a.alpha_us / 1e6
    print(f"{a.name}: {a.params:,} parameters = {S:,} bytes per all-reduce; T_1 = {a.step_ms:g} ms per step; alpha = {a.alpha_us:g} us (assumed)")
    for gbit in (10, 100):
        print(f"\n| machines | network | all-reduce ms | step ms (no overlap) | efficiency | step ms (full overlap) | efficiency |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        bw = gbit * 1e9 / 8
        for n in (2, 4, 8, 16, 32, 64):
            tar = 2 * (n - 1) / n * S / bw + 2 * (n - 1) * alpha
            no = t1 / n + tar
            full = max(t1 / n, tar)
            print(f"| {n} | {gbit} Gbit/s | {tar*1e3:.3f} | {no*1e3:.3f} | {t1/(n*no):.0%} | {full*1e3:.3f} | {t1/(n*full):.0%} |")
        # Where it stops scaling: the first N at which adding machines no longer shortens the step (no overlap).
        best = min(range(1, 4097), key=lambda n: (t1 / n + (2 * (n - 1) / n * S / bw + 2 * (n - 1) * alpha if n > 1 else 0)))
        print(f"\n{gbit} Gbit/s: the step is shortest at N = {best} (no overlap); beyond it the all-reduce grows faster than the compute shrinks.\n")

if __name__ == "__main__":
    main()

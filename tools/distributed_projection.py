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
       distributed_projection.py --brief NAME:P:T1 [NAME:P:T1 ...]   (one efficiency table for several models)
T1 is the measured single-process step time at the global batch; alpha is an assumption (not
measured here: loopback latency says nothing about a real network), shown in the output.
"""
import argparse

def t_ar(n, S, bw, alpha):
    return 2 * (n - 1) / n * S / bw + 2 * (n - 1) * alpha if n > 1 else 0.0

def brief(models, alpha):
    """One row per model and machine count: efficiency without and with full overlap, on 10 and 100 Gbit/s."""
    print(f"alpha = {alpha*1e6:g} us (assumed); E = T_1 / (N T_step); no overlap / full overlap\n")
    print("| model | parameters | T_1 ms | N | all-reduce ms 10G / 100G | E 10 Gbit/s | E 100 Gbit/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    stops = []
    for name, params, step_ms in models:
        S, t1 = 4 * params, step_ms / 1e3
        for n in (2, 4, 8, 16, 32, 64):
            cells = []
            ars = []
            for gbit in (10, 100):
                bw = gbit * 1e9 / 8
                tar = t_ar(n, S, bw, alpha)
                ars.append(f"{tar*1e3:.2f}")
                cells.append(f"{t1/(n*(t1/n+tar)):.0%} / {t1/(n*max(t1/n,tar)):.0%}")
            print(f"| {name} | {params:,} | {step_ms:g} | {n} | {' / '.join(ars)} | {cells[0]} | {cells[1]} |")
        for gbit in (10, 100):
            bw = gbit * 1e9 / 8
            best = min(range(1, 4097), key=lambda n: t1 / n + t_ar(n, S, bw, alpha))
            half = next((n for n in range(2, 4097) if t1 / (n * (t1 / n + t_ar(n, S, bw, alpha))) < 0.5), None)
            stops.append(f"{name}, {gbit} Gbit/s: efficiency below 50% from N = {half} (no overlap); shortest step at N = {best}")
    print()
    for line in stops:
        print(f"- {line}")

def main():
    import sys
    if "--brief" in sys.argv:
        i = sys.argv.index("--brief")
        alpha = float(sys.argv[sys.argv.index("--alpha-us") + 1]) / 1e6 if "--alpha-us" in sys.argv else 10e-6
        models = []
        for spec in sys.argv[i + 1:]:
            if spec.startswith("--"):
                break
            name, params, ms = spec.rsplit(":", 2)
            models.append((name, int(params), float(ms)))
        brief(models, alpha)
        return
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

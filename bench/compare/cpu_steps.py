#!/usr/bin/env python3
"""CPU seconds per training step of the comparison's models, for a machine too busy for wall-clock figures.

Each side runs twice per round, with S1 and S2 timed steps (no warm-up); the difference of the two runs'
CPU time (user + system, from the kernel's accounting of the child process) over S2 - S1 is the CPU cost
of one warm step, start-up and JIT cancelling out. Sides alternate within each round; prints the median
per side and its ratio to the first side. With --threads 1 this is the work per step, which on a
shared machine tracks the quiet machine's single-thread speed far better than wall time does.

Usage: python3 bench/compare/cpu_steps.py --model gpt --threads 1 --rounds 3 \\
         --backprop base=/tmp/base/Backprop.Cli.dll --backprop new=src/Backprop.Cli/bin/Release/net10.0/Backprop.Cli.dll --torch
"""
import argparse
import os
import resource
import statistics
import subprocess


def cpu_of(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", default="10,40", help="S1,S2")
    ap.add_argument("--backprop", action="append", default=[], help="NAME=path/to/Backprop.Cli.dll (repeatable)")
    ap.add_argument("--torch", action="store_true", help="add PyTorch (/usr/bin/python3, OpenBLAS SkylakeX)")
    a = ap.parse_args()
    s1, s2 = (int(s) for s in a.steps.split(","))
    here = os.path.dirname(os.path.abspath(__file__))
    sides = []
    for spec in a.backprop:
        name, dll = spec.split("=", 1)
        sides.append((name, lambda s, dll=dll: ["dotnet", dll, "bench", "model", a.model, "--threads", str(a.threads),
                                                  "--steps", str(s), "--warmup-seconds", "0", "--json"], dict(os.environ)))
    if a.torch:
        env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp", OPENBLAS_CORETYPE="SkylakeX")
        sides.append(("pytorch", lambda s: ["/usr/bin/python3", os.path.join(here, "torch_models.py"), a.model, "--threads", str(a.threads),
                                            "--steps", str(s), "--warmup-seconds", "0"], env))
    per = {name: [] for name, _, _ in sides}
    for r in range(a.rounds):
        for name, cmd, env in sides:
            c1 = cpu_of(cmd(s1), env)
            c2 = cpu_of(cmd(s2), env)
            per[name].append((c2 - c1) / (s2 - s1))
            print(f"round {r + 1} {name}: {per[name][-1] * 1000:.1f} ms CPU per step", flush=True)
    first = statistics.median(per[sides[0][0]])
    print(f"| side ({a.model}, {a.threads} thread(s)) | CPU ms per step (median of {a.rounds}) | vs {sides[0][0]} |")
    print("|---|---:|---:|")
    for name, _, _ in sides:
        m = statistics.median(per[name])
        print(f"| {name} | {m * 1000:.1f} | {first / m:.2f}x |")


if __name__ == "__main__":
    main()

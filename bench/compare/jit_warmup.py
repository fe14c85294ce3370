"""How the JIT's tiering settings change short training runs and the steady state (docs/performance.md, "Warm-up").

Runs `backprop train` (default digits job, 100 digits epochs, 3 MNIST epochs) and `backprop bench
model` under each setting, alternating settings within each round, and prints the median seconds,
the first epochs' and the last epoch's training samples/s, and the steady-state samples/s.
The backprop command itself sets CallCountingDelayMs=0 in its runtimeconfig; the first row puts
.NET's default (100 ms) back through the environment, which takes precedence.

usage: python3 bench/compare/jit_warmup.py [--rounds 3]   (after dotnet build -c Release src/Backprop.Cli)
"""
import argparse, json, os, statistics, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "src", "Backprop.Cli", "bin", "Release", "net10.0", "Backprop.Cli.dll")
SETTINGS = [
    (".NET default (100 ms delay)", {"DOTNET_TC_CallCountingDelayMs": "100"}),
    ("CallCountingDelayMs=0 (backprop's default)", {}),
    ("... and QuickJitForLoops=0", {"DOTNET_TC_QuickJitForLoops": "0"}),
    ("QuickJit=0", {"DOTNET_TC_QuickJit": "0"}),
]
JOBS = [("digits", ["digits"]), ("digits 100 epochs", ["digits", "--epochs", "100"]), ("mnist 3 epochs", ["mnist", "--epochs", "3"])]
MODELS = ["mlp-small", "window-lm"]


def run(args, env):
    e = dict(os.environ)
    e.update(env)
    out = subprocess.run(["dotnet", CLI, *args, "--json"], capture_output=True, text=True, env=e, cwd=ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    res = {}
    for _ in range(a.rounds):
        for name, env in SETTINGS:
            for job, args in JOBS:
                r = run(["train", *args], env)
                h = [x["samples_per_second"] for x in r["history"]]
                res.setdefault((name, job), []).append((r["seconds"], h[:3], h[-1]))
            for m in MODELS:
                r = run(["bench", "model", m, "--threads", "2"], env)
                res.setdefault((name, m), []).append((r["samples_per_second"],))
    for name, _ in SETTINGS:
        print(name)
        for job, _ in JOBS:
            v = sorted(res[(name, job)], key=lambda x: x[0])
            mid = v[len(v) // 2]
            print(f"  train {job}: {mid[0]:.2f} s (range {v[0][0]:.2f}-{v[-1][0]:.2f}); first epochs "
                  + ", ".join(f"{x / 1e3:.0f}K" for x in mid[1]) + f"; last epoch {mid[2] / 1e6:.2f}M samples/s")
        for m in MODELS:
            v = sorted(x[0] for x in res[(name, m)])
            print(f"  bench {m}: {statistics.median(v) / 1e3:,.0f}K samples/s (range {v[0] / 1e3:,.0f}-{v[-1] / 1e3:,.0f}K)")


if __name__ == "__main__":
    main()

"""Side-by-side benchmark of Backprop and PyTorch on this machine (bench/compare).

Trains the same models (same shapes, batch sizes, optimizers, synthetic batches) in Backprop
(`backprop bench model`) and in PyTorch (torch_models.py), alternating the runs, and prints one
table: training samples/s of each, the ratio, GEMM GFLOP/s next to the measured FMA peak, and the
slowdown of the small model when another process keeps one core busy. PyTorch is measured in two
configurations: Debian's default (reference BLAS) and its best one here (OpenBLAS with OpenMP,
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp, and OPENBLAS_CORETYPE set for this CPU:
SkylakeX, its AVX-512 kernels, where /proc/cpuinfo lists AVX-512 F/BW/DQ/VL, Haswell, its AVX2 kernels,
where it lists AVX2 and FMA, neither otherwise; forcing SkylakeX on a CPU without AVX-512 dies with
SIGILL). The table names the core type used. An OPENBLAS_CORETYPE already in the environment is kept.
Ratios are taken against the faster of the two for each row.

The cnn row's PyTorch is measured in channels-last memory format (its oneDNN convolutions in NHWC, the
fastest configuration here) and in plain NCHW, both with each BLAS configuration; the row shows the
faster layout of each (results.json keeps all four).

usage: python3 bench/compare/compare.py [--rounds 5] [--threads 2] [--out bench/compare/results] [--only ROWS] [--isa avx2]
       --only cnn,gemm,...    only these rows (model names, gemm, contention); merged into OUT/results.json
                              when it exists, and the table rewritten (--models is the same option)
       --isa avx2             the AVX2 paths of both on an AVX-512 machine: Backprop with AVX-512 switched off in
                              the runtime (DOTNET_EnableAVX512=0), OpenBLAS with OPENBLAS_CORETYPE=Haswell
       python3 bench/compare/compare.py --coretype    (prints the OpenBLAS core type it would use, and exits)
Needs: apt-get install -y python3-torch libopenblas0-openmp; a Release build of src/Backprop.Cli
(the script builds it).
"""
import argparse, json, os, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLI = os.path.join(ROOT, "src", "Backprop.Cli", "bin", "Release", "net10.0", "Backprop.Cli.dll")
PY = "/usr/bin/python3"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
MODELS = ["mlp-small", "mlp-256", "window-lm", "gpt", "lstm", "cnn"]


def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def backprop(*args):
    return run_json(["dotnet", CLI, *args, "--json"])


# The AVX-512 subsets OpenBLAS's SkylakeX kernels execute (as Intel's Skylake-SP has them).
SKYLAKEX_FLAGS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags of the first processor in /proc/cpuinfo (empty when it cannot be read)."""
    try:
        with open(cpuinfo) as f:
            line = next((l for l in f if l.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[1].split()) if ":" in line else set()


def openblas_coretype(flags, environ=os.environ):
    """OPENBLAS_CORETYPE for a CPU with these flags: SkylakeX with AVX-512, Haswell with AVX2 and FMA,
    None otherwise (OpenBLAS then detects the CPU itself). One already set in the environment wins."""
    if environ.get("OPENBLAS_CORETYPE"):
        return environ["OPENBLAS_CORETYPE"]
    if SKYLAKEX_FLAGS <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


CORETYPE = openblas_coretype(cpu_flags())


def torch_env(config):
    env = dict(os.environ)
    if config == "openblas":
        env["LD_LIBRARY_PATH"] = OPENBLAS + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        if CORETYPE:
            env["OPENBLAS_CORETYPE"] = CORETYPE
    return env


def torch(config, *args):
    return run_json([PY, os.path.join(HERE, "torch_models.py"), *args], env=torch_env(config))


class BusyCore:
    """A competing process spinning on one core (like another tenant's job)."""
    def __enter__(self):
        self.p = subprocess.Popen([PY, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *a):
        self.p.kill()
        self.p.wait()


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    return {"cpu": cpu, "cores": os.cpu_count(), "avx512f": "avx512f" in flags, "openblas_coretype": CORETYPE or "auto",
            "dotnet": subprocess.run(["dotnet", "--version"], capture_output=True, text=True).stdout.strip(),
            "torch": run_json([PY, "-c", "import json,torch; print(json.dumps({'v': torch.__version__}))"])["v"]}


def svg_bars(rows, path):
    """Grouped horizontal bars, written by hand (no plotting library needed). Each group has its own
    linear scale, the longest bar (or the FMA peak, for GEMM rows) spanning the full width, so the
    bar lengths within a group are the ratio between the frameworks."""
    W, rowh, left, right = 760, 64, 190, 250
    H = 50 + rowh * len(rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">This machine, 2 threads: Backprop vs best PyTorch '
             '(linear scale per group, higher is better)</text>']
    for i, r in enumerate(rows):
        y = 36 + i * rowh
        top = max(r["backprop"], r["torch_best"], r.get("peak", 0))
        def width(v):
            return (W - left - right) * v / top
        parts.append(f'<text x="{left-8}" y="{y+22}" text-anchor="end">{r["name"]}</text>')
        for j, (label, v, color) in enumerate([("Backprop", r["backprop"], "#2b7bb9"), ("PyTorch", r["torch_best"], "#e8893a")]):
            yy = y + 4 + j * 24
            parts.append(f'<rect x="{left}" y="{yy}" width="{width(v):.1f}" height="20" fill="{color}"/>')
            parts.append(f'<text x="{left+width(v)+4:.1f}" y="{yy+15}">{label}: {v:,.0f} {r["unit"]}</text>')
        if "peak" in r:
            xp = left + width(r["peak"])
            parts.append(f'<line x1="{xp:.1f}" y1="{y}" x2="{xp:.1f}" y2="{y+52}" stroke="black" stroke-dasharray="4,3"/>')
            parts.append(f'<text x="{xp-4:.1f}" y="{y+62}" text-anchor="end" font-size="10">FMA peak {r["peak"]:,.0f}</text>')
    parts.append("</svg>")
    open(path, "w").write("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--models", default="", help="the same as --only")
    ap.add_argument("--report-only", action="store_true", help="rewrite table.md and throughput.svg from OUT/results.json")
    ap.add_argument("--coretype", action="store_true", help="print the OPENBLAS_CORETYPE this machine gets, and exit")
    ap.add_argument("--only", default="", help="comma-separated rows to run: model names, gemm, contention (default: all)")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native",
                    help="avx2: DOTNET_EnableAVX512=0 for Backprop and OPENBLAS_CORETYPE=Haswell for PyTorch")
    a = ap.parse_args()
    global CORETYPE
    if a.isa == "avx2":
        os.environ["DOTNET_EnableAVX512"] = "0"  # .NET 10's switch (DOTNET_EnableAVX512F no longer has an effect)
        # Both PyTorch configurations: Debian's default BLAS may be an OpenBLAS too, which would pick
        # its AVX-512 kernels on its own.
        os.environ["OPENBLAS_CORETYPE"] = CORETYPE = "Haswell"
    only = set(filter(None, a.only.split(",")))
    if a.coretype:
        print(CORETYPE or "auto")
        return
    if a.report_only:
        res = json.load(open(os.path.join(a.out, "results.json")))
        report(res, a.out)
        return
    t = str(a.threads)
    if not a.skip_build:
        subprocess.run(["dotnet", "build", "-c", "Release", os.path.join(ROOT, "src", "Backprop.Cli")], check=True, capture_output=True)
    os.makedirs(a.out, exist_ok=True)
    only |= set(filter(None, a.models.split(",")))
    bad = sorted(m for m in only if m not in MODELS and m not in ("gemm", "contention"))
    if bad:
        sys.exit(f"compare.py: unknown row {bad[0]!r} in --only; expected some of {', '.join(MODELS)}, gemm, contention")
    res = {"machine": machine(), "threads": a.threads, "rounds": a.rounds, "models": {}, "gemm": {}}
    res["machine"]["backprop_kernel"] = backprop("bench", "gemm", "--size", "64", "--threads", "1")["kernel"].split(" micro-kernel")[0]
    measure_models(res, [m for m in MODELS if not only or m in only], a.rounds, t)

    # GEMM and the FMA peak.
    res["peak"] = {"threads_1": backprop("bench", "peak", "--threads", "1")["gflops"],
                   "threads_n": backprop("bench", "peak", "--threads", t)["gflops"]}
    for n in ((1024, 2048) if not only or "gemm" in only else ()):
        runs = {"backprop": [], "torch_default": [], "torch_openblas": []}
        for r in range(a.rounds):
            runs["backprop"].append(backprop("bench", "gemm", "--size", str(n), "--threads", t)["gflops"])
            runs["torch_openblas"].append(torch("openblas", "gemm", "--size", str(n), "--threads", t)["gflops"])
            runs["torch_default"].append(torch("default", "gemm", "--size", str(n), "--threads", t)["gflops"])
        res["gemm"][n] = {k: statistics.median(v) for k, v in runs.items()}
        res["gemm"][n]["runs"] = runs
    res["peak"]["threads_n_after"] = backprop("bench", "peak", "--threads", t)["gflops"]

    # Contention: the overhead-bound model while another process keeps one core busy.
    if only and "contention" not in only:
        save(res, a, only)
        return
    with BusyCore():
        bp_busy = statistics.median(backprop("bench", "model", "mlp-small", "--threads", t)["samples_per_second"] for _ in range(3))
        th_busy = {c: statistics.median(torch(c, "mlp-small", "--threads", t, "--steps", "2000")["samples_per_second"] for _ in range(3))
                   for c in ("openblas", "default")}
    def unloaded(k):  # mlp-small without the busy core, when --only left its model row out
        run = (lambda: backprop("bench", "model", "mlp-small", "--threads", t)) if k == "backprop" else \
            (lambda: torch(k[len("torch_"):], "mlp-small", "--threads", t))
        return {"median": statistics.median(run()["samples_per_second"] for _ in range(3))}
    ms = res["models"].get("mlp-small") or {k: unloaded(k) for k in ("backprop", "torch_openblas", "torch_default")}
    res["contention"] = {"backprop": bp_busy, "torch_openblas": th_busy["openblas"], "torch_default": th_busy["default"],
                         "backprop_slowdown": ms["backprop"]["median"] / bp_busy,
                         "torch_openblas_slowdown": ms["torch_openblas"]["median"] / th_busy["openblas"],
                         "torch_default_slowdown": ms["torch_default"]["median"] / th_busy["default"]}

    save(res, a, only)


def save(res, a, only):
    """Writes OUT/results.json and the table; a partial run (--only) is merged into an earlier full
    run's results when there is one, so the table keeps the other rows."""
    path = os.path.join(a.out, "results.json")
    if only and os.path.exists(path):
        old = json.load(open(path))
        old["models"].update(res["models"])
        old["gemm"].update({str(n): g for n, g in res["gemm"].items()})
        for key in ("contention", "peak"):
            if key in res and (key != "peak" or res["gemm"]):
                old[key] = res[key]
        old.setdefault("partial_runs", []).append({"rows": sorted(only), "machine": res["machine"], "threads": a.threads, "rounds": a.rounds})
        res = old
    json.dump(res, open(path, "w"), indent=1)
    report(res, a.out)


def measure_models(res, models, rounds, t):
    """Alternates Backprop and the PyTorch configurations within each round, per model. The cnn row
    runs PyTorch in both memory formats (channels-last, its default here, and NCHW)."""
    for m in models:
        layouts = [("", []), ("_nchw", ["--layout", "nchw"])] if m == "cnn" else [("", [])]
        runs = {"backprop": []}
        for suffix, _ in layouts:
            runs["torch_openblas" + suffix], runs["torch_default" + suffix] = [], []
        for r in range(rounds):
            runs["backprop"].append(backprop("bench", "model", m, "--threads", t)["samples_per_second"])
            for suffix, extra in layouts:
                runs["torch_openblas" + suffix].append(torch("openblas", m, "--threads", t, *extra)["samples_per_second"])
                runs["torch_default" + suffix].append(torch("default", m, "--threads", t, *extra)["samples_per_second"])
            print(f"{m} round {r+1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()), file=sys.stderr)
        res["models"][m] = {k: {"median": statistics.median(v), "runs": v} for k, v in runs.items()}


def report(res, out):
    """Prints the table and writes table.md and throughput.svg into OUT."""
    units = {"mlp-small": "samples/s", "mlp-256": "samples/s", "window-lm": "tokens/s", "gpt": "tokens/s", "lstm": "tokens/s",
             "cnn": "samples/s"}
    names = {"mlp-small": "MLP 784-16-16-10 sigmoid SGD b10", "mlp-256": "MLP 784-256-128-10 ReLU Adam b128",
             "window-lm": "fixed-window LM Adam b128", "gpt": "GPT d128 4 layers 4 heads ctx 64 AdamW b32",
             "lstm": "char LSTM LM e64 h256 ctx64 Adam b32",
             "cnn": "CNN preset c32-bn-relu-m2-c64-bn-relu-m2 Adam b128"}
    # Results written before the core type was detected were all measured with SkylakeX.
    core = res["machine"].get("openblas_coretype", "SkylakeX")
    lines = [f"| model | Backprop | PyTorch (OpenBLAS {core}) | PyTorch (Debian default) | ratio vs best PyTorch |",
             "|---|---:|---:|---:|---:|"]
    plot = []
    for m in MODELS:
        if m not in res["models"]:
            continue  # results written before this row existed
        d = res["models"][m]
        bp, ob, df = d["backprop"]["median"], d["torch_openblas"]["median"], d["torch_default"]["median"]
        obs, dfs = f"{ob:,.0f}", f"{df:,.0f}"
        if "torch_openblas_nchw" in d:
            # the faster memory format of each configuration
            obn, dfn = d["torch_openblas_nchw"]["median"], d["torch_default_nchw"]["median"]
            obs = f"{max(ob, obn):,.0f} ({'channels-last' if ob >= obn else 'NCHW'})"
            dfs = f"{max(df, dfn):,.0f} ({'channels-last' if df >= dfn else 'NCHW'})"
            ob, df = max(ob, obn), max(df, dfn)
        best = max(ob, df)
        d["ratio_vs_best"] = bp / best
        lines.append(f"| {names[m]} ({units[m]}) | {bp:,.0f} | {obs} | {dfs} | {bp/best:.2f}x |")
        plot.append({"name": m, "backprop": bp, "torch_best": best, "unit": units[m].split(" ")[0]})
    pk = res.get("peak", {}).get("threads_n", 0)
    for n, g in res["gemm"].items():
        lines.append(f"| GEMM {n}x{n}x{n} (GFLOP/s; FMA peak {pk:.0f}) | {g['backprop']:.0f} ({100*g['backprop']/pk:.0f}% of peak) | "
                     f"{g['torch_openblas']:.0f} | {g['torch_default']:.0f} | {g['backprop']/max(g['torch_openblas'], g['torch_default']):.2f}x |")
    c = res.get("contention")
    if c:
        lines.append(f"| mlp-small with one core busy (samples/s; slowdown) | {c['backprop']:,.0f} ({c['backprop_slowdown']:.1f}x slower) | "
                     f"{c['torch_openblas']:,.0f} ({c['torch_openblas_slowdown']:.1f}x slower) | {c['torch_default']:,.0f} ({c['torch_default_slowdown']:.1f}x slower) | |")
    table = "\n".join(lines)
    print(table)
    open(os.path.join(out, "table.md"), "w").write(table + "\n")
    for n, g in res["gemm"].items():
        plot.append({"name": f"GEMM {n}", "backprop": g["backprop"], "torch_best": max(g["torch_openblas"], g["torch_default"]),
                     "unit": "GFLOP/s", "peak": pk})
    svg_bars(plot, os.path.join(out, "throughput.svg"))
    peak = f"FMA peak {res['peak']['threads_1']:.0f} GFLOP/s on 1 thread, {pk:.0f} on {res['threads']}. " if "peak" in res else ""
    print(f"\nmachine: {res['machine']}; Backprop kernels: {res['machine'].get('backprop_kernel', '?')}; {res['threads']} threads; medians of {res['rounds']} alternating rounds; "
          f"{peak}Written to {out}/")


if __name__ == "__main__":
    main()

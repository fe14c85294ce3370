"""Quick check of compare.py's OpenBLAS core-type choice (no benchmark is run): python3 bench/compare/test_coretype.py"""
import os, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare

# An AMD EPYC with AVX2 only: SkylakeX would die with SIGILL there.
EPYC_AVX2 = "fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand bmi1 avx2 smep bmi2"
SKYLAKE_SP = EPYC_AVX2 + " avx512f avx512dq rdseed adx avx512cd avx512bw avx512vl"
ONLY_F = EPYC_AVX2 + " avx512f"

assert compare.openblas_coretype(set(EPYC_AVX2.split()), {}) == "Haswell"
assert compare.openblas_coretype(set(SKYLAKE_SP.split()), {}) == "SkylakeX"
assert compare.openblas_coretype(set(ONLY_F.split()), {}) == "Haswell"
assert compare.openblas_coretype({"sse2"}, {}) is None
assert compare.openblas_coretype(set(SKYLAKE_SP.split()), {"OPENBLAS_CORETYPE": "Zen"}) == "Zen"
with tempfile.NamedTemporaryFile("w", suffix="cpuinfo", delete=False) as f:
    f.write("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: " + EPYC_AVX2 + "\n\nprocessor\t: 1\nflags\t\t: " + EPYC_AVX2 + "\n")
assert compare.cpu_flags(f.name) == set(EPYC_AVX2.split())
os.unlink(f.name)
assert compare.cpu_flags("/nonexistent/cpuinfo") == set()

# The table names the core type the run used.
out = tempfile.mkdtemp()
res = {"machine": {"cpu": "AMD EPYC", "openblas_coretype": "Haswell"}, "threads": 2, "rounds": 1,
       "models": {m: {k: {"median": 100.0} for k in ("backprop", "torch_openblas", "torch_default")} for m in compare.MODELS},
       "gemm": {"1024": {"backprop": 100.0, "torch_openblas": 90.0, "torch_default": 10.0}},
       "peak": {"threads_1": 90.0, "threads_n": 180.0},
       "contention": {"backprop": 1.0, "torch_openblas": 1.0, "torch_default": 1.0, "backprop_slowdown": 1.0,
                      "torch_openblas_slowdown": 1.0, "torch_default_slowdown": 1.0}}
compare.report(res, out)
assert "PyTorch (OpenBLAS Haswell)" in open(os.path.join(out, "table.md")).read()
print(f"coretype checks passed; this machine: {compare.CORETYPE or 'auto'}")

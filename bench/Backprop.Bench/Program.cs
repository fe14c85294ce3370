using BenchmarkDotNet.Running;
using Backprop.Bench;

// bench/Backprop.Bench: `soak [--minutes M] [--interval S]` for the long-run memory check,
// `gemm-ab --size N CONFIG...` for in-process A/B runs of GEMM variants (see GemmAb), anything
// else goes to BenchmarkDotNet (e.g. `--filter *Gemm*`).
if (args.Length > 0 && args[0] == "soak") return Soak.Run(args[1..]);
if (args.Length > 0 && args[0] == "gemm-ab") return GemmAb.Run(args[1..]);
if (args.Length > 0 && args[0] == "gemm-shapes") return GemmShapes.Run(args[1..]);
if (args.Length > 0 && args[0] == "conv-parts") return ConvParts.Run(args[1..]);
if (args.Length > 0 && args[0] == "gpt-decode") return GptBench.Decode(args[1..]);
if (args.Length > 0 && args[0] == "attention-memory") return GptBench.AttentionMemory(args[1..]);
if (args.Length > 0 && args[0] == "gpt-profile") return GptProfile.Run(args[1..]);
if (args.Length > 0 && args[0] == "gpt-gemm") return GptProfile.Gemms(args[1..]);
if (args.Length > 0 && args[0] == "gpt-micro") return GptProfile.Micro(args[1..]);
if (args.Length > 0 && args[0] == "vec-probe") return VecProbe.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Soak).Assembly).Run(args);
return 0;

using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Backprop.Backends.Cpu;

namespace Backprop.Bench;

/// <summary>SGEMM GFLOP/s by size and thread count (square, no transposes) and on the shapes an MLP uses.</summary>
[Config(typeof(GflopsConfig))]
public unsafe class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];

    [Params(64, 256, 1024, 2048)]
    public int N;

    [Params(1, 2)]
    public int ThreadCount;

    [GlobalSetup]
    public void Setup()
    {
        Threads.Count = ThreadCount;
        var g = new Generator(1);
        _a = Tensor.Rand([N, N], g).ToArray();
        _b = Tensor.Rand([N, N], g).ToArray();
        _c = new float[N * N];
    }

    [Benchmark]
    public void Sgemm()
    {
        fixed (float* a = _a, b = _b, c = _c) Gemm.Sgemm(false, false, N, N, N, 1, a, N, b, N, 0, c, N);
    }

    /// <summary>Adds a GFLOP/s column computed from the mean time and the 2·N³ flops of a product.</summary>
    public sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn());
    }

    private sealed class GflopsColumn : IColumn
    {
        public string Id => "GFLOPs";
        public string ColumnName => "GFLOP/s";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "billions of floating-point operations per second (2·N³ per product)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            var n = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "N")?.Value;
            if (report?.ResultStatistics == null || n is not int size) return "-";
            return (2.0 * size * size * size / report.ResultStatistics.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}

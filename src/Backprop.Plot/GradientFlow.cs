using Backprop.NN;

namespace Backprop.Plot;

/// <summary>
/// Records the mean |gradient| of each parameter after every backward pass (through
/// <see cref="Tensor.RegisterPostAccumulateGradHook"/>), and averages it per epoch: the picture that
/// shows vanishing or exploding gradients layer by layer. Dispose to remove the hooks.
/// </summary>
public sealed class GradientFlow : IDisposable
{
    private readonly List<IDisposable> _handles = [];
    private readonly double[] _sum;
    private readonly int[] _count;
    private readonly long[] _calls;

    /// <summary>
    /// Record every this many backward passes (default 1: all). A few small ops per parameter per
    /// recorded pass add up on small models; an epoch's mean over a sample of its steps is the same picture.
    /// </summary>
    public int Every { get; set; } = 1;

    /// <summary>The parameter names, in the model's order ("0.weight", "0.bias", ...).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Per completed epoch: the mean over its steps of each parameter's mean |gradient|.</summary>
    public List<double[]> Epochs { get; } = [];

    /// <summary>Hooks the parameters of <paramref name="model"/> (all of them, or those whose name <paramref name="include"/> accepts).</summary>
    public GradientFlow(Module model, Func<string, bool>? include = null)
    {
        var ps = model.NamedParameters().Where(p => p.Param.RequiresGrad && (include?.Invoke(p.Name) ?? true)).ToList();
        Names = ps.Select(p => p.Name).ToArray();
        _sum = new double[ps.Count];
        _count = new int[ps.Count];
        _calls = new long[ps.Count];
        for (int i = 0; i < ps.Count; i++)
        {
            int k = i;
            _handles.Add(ps[i].Param.RegisterPostAccumulateGradHook(t =>
            {
                if (_calls[k]++ % Math.Max(1, Every) != 0 || t.Grad is not { } g) return;
                using (Tensor.NoGrad())
                    _sum[k] += g.Abs().Mean().ItemDouble();
                _count[k]++;
            }));
        }
    }

    /// <summary>Closes the epoch: appends the means since the last call and starts again.</summary>
    public double[] EndEpoch()
    {
        var means = new double[_sum.Length];
        for (int i = 0; i < means.Length; i++) means[i] = _count[i] > 0 ? _sum[i] / _count[i] : double.NaN;
        Array.Clear(_sum);
        Array.Clear(_count);
        Epochs.Add(means);
        return means;
    }

    /// <summary>The chart: one line per parameter, mean |gradient| (log scale) against the epoch.</summary>
    public string[] Save(string path, string title = "gradient flow: mean |grad| per layer")
    {
        var x = Enumerable.Range(1, Epochs.Count).Select(e => (double)e).ToArray();
        var series = Names.Select((n, i) => new Series(n, x, Epochs.Select(e => e[i]).ToArray())).ToList();
        return Charts.Lines(path, title, "epoch", "mean |grad|", series, logY: true);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var h in _handles) h.Dispose();
        _handles.Clear();
    }
}

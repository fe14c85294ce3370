using System.Globalization;
using System.Text;

namespace Backprop;

/// <summary>Prints tensors the way PyTorch does: nested brackets, aligned columns, 4 decimals, "..." for large tensors.</summary>
internal static class TensorFormatter
{
    private const int Threshold = 1000, EdgeItems = 3;

    public static string Format(Tensor t)
    {
        var sb = new StringBuilder("tensor(");
        bool summarize = t.NumElements > Threshold;
        var values = t.ToDoubleArray();
        var fmt = ChooseFormat(t, values, summarize);
        if (t.Rank == 0) sb.Append(fmt(values[0]).Trim());
        else
        {
            int width = 0;
            foreach (var i in VisibleFlat(t, summarize)) width = Math.Max(width, fmt(values[i]).Length);
            AppendDim(sb, t, values, fmt, width, 0, 0, summarize, indent: 7);
        }
        var extras = new List<string>();
        if (t.Rank != 1 || summarize) extras.Add($"shape={t.Shape}");
        if (t.DType is not (DType.Float32 or DType.Bool)) extras.Add($"dtype={t.DType.Name()}"); // PyTorch names no dtype for bool either
        if (t.GradFn != null) extras.Add($"grad_fn={t.GradFn}");
        else if (t.RequiresGrad) extras.Add("requires_grad=True");
        foreach (var e in extras) sb.Append(", ").Append(e);
        return sb.Append(')').ToString();
    }

    private static IEnumerable<int> VisibleFlat(Tensor t, bool summarize)
    {
        if (!summarize) { for (int i = 0; i < t.NumElements; i++) yield return i; yield break; }
        var strides = Tensor.ContiguousStrides(t.Shape.AsSpan());
        for (int i = 0; i < t.NumElements; i++)
        {
            bool visible = true;
            int rem = i;
            for (int d = 0; d < t.Rank && visible; d++)
            {
                int ix = rem / strides[d];
                rem %= strides[d];
                int n = t.Shape[d];
                if (n > 2 * EdgeItems && ix >= EdgeItems && ix < n - EdgeItems) visible = false;
            }
            if (visible) yield return i;
        }
    }

    private static Func<double, string> ChooseFormat(Tensor t, double[] values, bool summarize)
    {
        var ci = CultureInfo.InvariantCulture;
        if (t.DType == DType.Int64) return v => ((long)v).ToString(ci);
        if (t.DType == DType.Bool) return v => v != 0 ? "True" : "False";
        var finite = VisibleFlat(t, summarize).Select(i => values[i]).Where(double.IsFinite).ToList();
        bool allInt = finite.All(v => v == Math.Round(v));
        double maxAbs = finite.Count > 0 ? finite.Max(Math.Abs) : 0;
        double minAbs = finite.Where(v => v != 0).Select(Math.Abs).DefaultIfEmpty(0).Min();
        bool sci = finite.Count > 0 && (maxAbs >= 1e8 || (minAbs > 0 && minAbs < 1e-4) || (minAbs > 0 && maxAbs / minAbs > 1000 && !allInt));
        return v =>
        {
            if (double.IsNaN(v)) return "nan";
            if (double.IsPositiveInfinity(v)) return "inf";
            if (double.IsNegativeInfinity(v)) return "-inf";
            if (sci) return v.ToString("0.0000e+00", ci);
            if (allInt) return v.ToString("0", ci) + ".";
            return v.ToString("0.0000", ci);
        };
    }

    private static void AppendDim(StringBuilder sb, Tensor t, double[] values, Func<double, string> fmt, int width,
        int dim, int baseFlat, bool summarize, int indent)
    {
        int n = t.Shape[dim];
        int stride = 1;
        for (int d = dim + 1; d < t.Rank; d++) stride *= t.Shape[d];
        sb.Append('[');
        bool cut = summarize && n > 2 * EdgeItems;
        for (int i = 0; i < n; i++)
        {
            if (cut && i == EdgeItems)
            {
                sb.Append(dim == t.Rank - 1 ? "..., " : "...,\n" + new string(' ', indent + dim + 1));
                i = n - EdgeItems - 1;
                continue;
            }
            if (dim == t.Rank - 1) sb.Append(fmt(values[baseFlat + i]).PadLeft(width));
            else AppendDim(sb, t, values, fmt, width, dim + 1, baseFlat + i * stride, summarize, indent);
            if (i < n - 1)
            {
                if (dim == t.Rank - 1) sb.Append(", ");
                else sb.Append(',').Append('\n', t.Rank - dim - 1).Append(' ', indent + dim + 1);
            }
        }
        sb.Append(']');
    }
}

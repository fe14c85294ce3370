using Backprop.NN;

namespace Backprop.Plot;

/// <summary>A model's class probabilities over a grid of the plane (for 2-D inputs).</summary>
public static class DecisionMap
{
    /// <summary>
    /// Softmax of <paramref name="model"/>'s outputs at the centres of a <paramref name="resolution"/>²
    /// grid over [xMin, xMax]×[yMin, yMax]: [row, column, class], row 0 at yMax (the top of a picture).
    /// Runs without recording a graph, in evaluation mode, and leaves the model's mode as it was.
    /// </summary>
    public static float[,,] Probabilities(Module model, double xMin, double xMax, double yMin, double yMax, int resolution = 120)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(resolution, 2);
        var dtype = model.Parameters().FirstOrDefault()?.DType ?? DType.Float32;
        int n = resolution;
        var grid = new double[n * n * 2];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                grid[(r * n + c) * 2] = xMin + (c + 0.5) * (xMax - xMin) / n;
                grid[(r * n + c) * 2 + 1] = yMax - (r + 0.5) * (yMax - yMin) / n;
            }
        bool training = model.Training;
        model.Eval();
        double[] p;
        int k;
        try
        {
            using (Tensor.NoGrad())
            {
                var x = Tensor.FromArray(grid, n * n, 2).To(dtype);
                var probs = model.Forward(x).Softmax(1);
                k = probs.Size(1);
                p = probs.ToDoubleArray();
            }
        }
        finally
        {
            model.Train(training);
        }
        var result = new float[n, n, k];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
                for (int j = 0; j < k; j++)
                    result[r, c, j] = (float)p[(r * n + c) * k + j];
        return result;
    }

    /// <summary>The bounds of the points with a margin of <paramref name="margin"/> of their extent on each side.</summary>
    public static (double XMin, double XMax, double YMin, double YMax) Bounds(IEnumerable<LabelledPoint> points, double margin = 0.08)
    {
        double x0 = double.PositiveInfinity, x1 = double.NegativeInfinity, y0 = double.PositiveInfinity, y1 = double.NegativeInfinity;
        foreach (var p in points)
            (x0, x1, y0, y1) = (Math.Min(x0, p.X), Math.Max(x1, p.X), Math.Min(y0, p.Y), Math.Max(y1, p.Y));
        if (!double.IsFinite(x0)) return (-1, 1, -1, 1);
        double dx = Math.Max(x1 - x0, 1e-6) * margin, dy = Math.Max(y1 - y0, 1e-6) * margin;
        return (x0 - dx, x1 + dx, y0 - dy, y1 + dy);
    }
}

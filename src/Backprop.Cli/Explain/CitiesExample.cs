using Backprop.Data;
using Backprop.NN;

namespace Backprop.Cli.Explain;

/// <summary>
/// Which city is this point in? One input (longitude), three neurons h_i = m_i·x + b_i for
/// Madrid, Paris and Berlin, softmax, cross-entropy; a numerical slope, then the backprop
/// gradient ŷ − y; then gradient descent on scattered points of the three cities, and finally
/// longitude and latitude with Barcelona added (two inputs, four neurons, 12 parameters).
/// </summary>
public sealed class CitiesExample : WorkedExample
{
    /// <inheritdoc/>
    public override string Name => "cities";

    /// <inheritdoc/>
    public override string Summary => "classify a point as Madrid, Paris or Berlin by longitude; slopes by nudging and by backprop; then four cities";

    /// <summary>Longitude of the Paris point of the walk-through.</summary>
    public const double ParisX = 2.3514;

    /// <summary>The single-point part of the example.</summary>
    public sealed record Step1(double[] H, double[] P, double Loss, double[] PNudged, double LossNudged, double NumericalSlope,
        double[] DLdH, double DLdM2, double AutogradDLdM2);

    /// <summary>A training run of the example.</summary>
    public sealed record Fit(string[] Cities, int Inputs, int Parameters, int Steps, double InitialLoss, double FinalLoss,
        double Accuracy, double[] Weights, double[] Bias, int[] CorrectPerCity, int[] CountPerCity);

    /// <summary>h = m·x + b, softmax, cross-entropy against Paris, for m = (1, 0, −1), b = 0; then m2 = 0.1.</summary>
    public Step1 ComputeStep1()
    {
        static (double[] h, double[] p, double loss) Forward(double[] m, double x)
        {
            var h = m.Select(mi => mi * x).ToArray();
            double max = h.Max();
            var e = h.Select(v => Math.Exp(v - max)).ToArray();
            var p = e.Select(v => v / e.Sum()).ToArray();
            return (h, p, -Math.Log(p[1]));
        }
        var (h, p, loss) = Forward([1, 0, -1], ParisX);
        var (_, p2, loss2) = Forward([1, 0.1, -1], ParisX);
        var dLdH = new[] { p[0], p[1] - 1, p[2] };

        // the same with autograd: logits = x·m + b, cross-entropy against class 1 (Paris)
        var m = Tensor.FromArray(new[] { 1.0, 0, -1 }).RequiresGrad_();
        var b = Tensor.Zeros([3], DType.Float64).RequiresGrad_();
        var logits = (ParisX * m + b).Unsqueeze(0);
        Loss.CrossEntropy(logits, Tensor.FromArray(new long[] { 1 })).Backward();
        return new Step1(h, p, loss, p2, loss2, (loss2 - loss) / 0.1, dLdH, ParisX * (p[1] - 1), m.Grad!.GetDouble(1));
    }

    /// <summary>Full-batch gradient descent θ ← θ − η·dL/dθ on points scattered around the cities.</summary>
    public Fit Train(IReadOnlyList<City> cities, bool longitudeOnly, int steps = 300, double lr = 0.5, ulong seed = 1)
    {
        var data = Data.Cities.Generate(samples: 100 * cities.Count, cities: cities, longitudeOnly: longitudeOnly, seed: seed);
        var x = data.Inputs.To(DType.Float64);
        var y = data.Targets;
        // Standardize each input (degrees → zero mean, unit spread) so one learning rate suits every parameter.
        var mean = x.Mean(0, keepDim: true);
        var std = x.Var(0, keepDim: true).Sqrt();
        var xs = (x - mean) / std;
        int k = cities.Count, d = x.Size(1);
        var w = Tensor.Zeros([k, d], DType.Float64).RequiresGrad_();
        var b = Tensor.Zeros([k], DType.Float64).RequiresGrad_();
        if (longitudeOnly && k == 3) using (Tensor.NoGrad()) w.CopyFrom(Tensor.FromArray(new[] { 1.0, 0, -1 }).Reshape(3, 1)); // the walk-through's start
        double initial = 0, final = 0;
        for (int s = 0; s < steps; s++)
        {
            var loss = Loss.CrossEntropy(Functional.Linear(xs, w, b), y);
            if (s == 0) initial = loss.ItemDouble();
            w.Grad = null;
            b.Grad = null;
            loss.Backward();
            using (Tensor.NoGrad())
            {
                w.Add_(w.Grad!, -lr);
                b.Add_(b.Grad!, -lr);
            }
            final = loss.ItemDouble();
        }
        Tensor pred;
        using (Tensor.NoGrad()) pred = Functional.Linear(xs, w, b).Argmax(1);
        var pv = pred.ToLongArray();
        var yv = y.ToLongArray();
        var correct = new int[k];
        var count = new int[k];
        for (int i = 0; i < yv.Length; i++)
        {
            count[yv[i]]++;
            if (pv[i] == yv[i]) correct[yv[i]]++;
        }
        return new Fit(cities.Select(c => c.Name).ToArray(), d, k * d + k, steps, initial, final,
            (double)correct.Sum() / yv.Length, w.ToDoubleArray(), b.ToDoubleArray(), correct, count);
    }

    /// <inheritdoc/>
    public override void Run(TextWriter o)
    {
        var s = ComputeStep1();
        o.WriteLine("Cities by longitude: which city is a point in?");
        o.WriteLine();
        o.WriteLine("  Three neurons, one per city: h_i = m_i * x + b_i (Madrid, Paris, Berlin), then softmax, then cross-entropy.");
        o.WriteLine("  Start with m = (1, 0, -1), b = (0, 0, 0). A point in Paris: x = 2.3514 (its longitude).");
        o.WriteLine();
        o.WriteLine($"  h = {V(s.H, 2)}");
        o.WriteLine($"  softmax:  P(Madrid) = {F(s.P[0])}   P(Paris) = {F(s.P[1])}   P(Berlin) = {F(s.P[2])}");
        o.WriteLine($"  loss = -log P(Paris) = {F(s.Loss, 2)}        (the network is confident, and wrong)");
        o.WriteLine();
        o.WriteLine("  Nudge m2 (Paris's slope) from 0 to 0.1:");
        o.WriteLine($"  P(Paris) = {F(s.PNudged[1])}, loss = {F(s.LossNudged, 2)}");
        o.WriteLine($"  numerical slope  dL/dm2 ~ ({F(s.LossNudged, 3)} - {F(s.Loss, 3)}) / 0.1 = {F(s.NumericalSlope, 2)}");
        o.WriteLine();
        o.WriteLine("  Backprop gets every slope at once. For softmax followed by cross-entropy:");
        o.WriteLine($"  dL/dh = y_hat - y = {V(s.P, 3)} - (0, 1, 0) = {V(s.DLdH, 3)}");
        o.WriteLine($"  dL/dm2 = dL/dh2 * dh2/dm2 = (y_hat2 - 1) * x = {P(s.DLdH[1], 3)} * {F(ParisX, 4)} = {F(s.DLdM2, 2)}");
        o.WriteLine($"  autograd agrees: m.Grad[1] = {F(s.AutogradDLdM2, 2)}");
        o.WriteLine($"  (the nudge gave {F(s.NumericalSlope, 2)}: a step of 0.1 is not infinitely small)");
        o.WriteLine();

        var three = Train(Cities.LongitudeExample, longitudeOnly: true);
        o.WriteLine("  Gradient descent, theta <- theta - 0.5 * dL/dtheta, on 300 points scattered around the three cities");
        o.WriteLine("  (longitude standardized to mean 0, spread 1):");
        WriteFit(o, three);
        o.WriteLine();
        var fourByLongitude = Train(Cities.All, longitudeOnly: true);
        var four = Train(Cities.All, longitudeOnly: false);
        o.WriteLine("  Barcelona (2.17 E) and Paris (2.35 E) have almost the same longitude: one input cannot tell them apart.");
        o.WriteLine($"  Longitude only, four cities: accuracy {F(100 * fourByLongitude.Accuracy, 1)}% " +
            $"(Paris {fourByLongitude.CorrectPerCity[1]}/{fourByLongitude.CountPerCity[1]}, Barcelona {fourByLongitude.CorrectPerCity[3]}/{fourByLongitude.CountPerCity[3]}).");
        o.WriteLine("  Add latitude: two inputs, four neurons, 4 x 2 weights + 4 biases = 12 parameters.");
        WriteFit(o, four);
    }

    private static void WriteFit(TextWriter o, Fit f)
    {
        o.WriteLine($"    {f.Steps} steps: loss {F(f.InitialLoss, 3)} -> {F(f.FinalLoss, 3)}, accuracy {F(100 * f.Accuracy, 1)}%");
        for (int c = 0; c < f.Cities.Length; c++)
        {
            var w = string.Join(", ", Enumerable.Range(0, f.Inputs).Select(i => F(f.Weights[c * f.Inputs + i], 2)));
            o.WriteLine($"    {f.Cities[c],-10} {f.CorrectPerCity[c],3}/{f.CountPerCity[c],-3} correct   m = ({w}), b = {F(f.Bias[c], 2)}");
        }
    }
}

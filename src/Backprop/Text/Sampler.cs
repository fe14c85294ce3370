namespace Backprop.Text;

/// <summary>How to pick the next token from the logits.</summary>
/// <param name="Temperature">Divides the logits: below 1 sharper, above 1 flatter; 0 picks the most likely token (greedy).</param>
/// <param name="TopK">Keep only the K most likely tokens (0: all).</param>
/// <param name="TopP">Keep the smallest set of most likely tokens whose probability reaches P (nucleus sampling; 1: all).</param>
public sealed record SamplingOptions(double Temperature = 1.0, int TopK = 0, double TopP = 1.0)
{
    /// <summary>A one-line problem with the options, or null.</summary>
    public string? Check() =>
        !(Temperature >= 0 && double.IsFinite(Temperature)) ? $"temperature must be a finite number >= 0, got {Temperature}."
        : TopK < 0 ? $"top-k must be >= 0 (0: no limit), got {TopK}."
        : !(TopP > 0 && TopP <= 1) ? $"top-p must be in (0, 1], got {TopP}."
        : null;
}

/// <summary>
/// Seeded sampling from any <see cref="LanguageModel"/> through its <see cref="IDecoder"/>: temperature,
/// top-k and top-p (nucleus), on a host copy of each step's logits.
/// </summary>
public static class Sampler
{
    /// <summary>
    /// The distribution the next token is drawn from: logits divided by the temperature, cut to the
    /// top-k, softmax, cut to the top-p nucleus, renormalized. Ties at the cut keep the lower id. With
    /// temperature 0 all mass is on the most likely token (the lowest id among equals).
    /// </summary>
    public static double[] Probabilities(ReadOnlySpan<float> logits, SamplingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Check() is string problem) throw new ArgumentException($"Sampler: {problem}", nameof(options));
        int v = logits.Length;
        if (v == 0) throw new ArgumentException("Sampler: no logits.", nameof(logits));
        var p = new double[v];
        // Most likely first, lower id first among equals.
        var order = new int[v];
        for (int i = 0; i < v; i++) order[i] = i;
        var l = logits.ToArray();
        Array.Sort(order, (a, b) => l[a] != l[b] ? l[b].CompareTo(l[a]) : a.CompareTo(b));
        if (options.Temperature == 0)
        {
            p[order[0]] = 1;
            return p;
        }
        int keep = options.TopK > 0 ? Math.Min(options.TopK, v) : v;
        double max = l[order[0]] / options.Temperature, sum = 0;
        for (int r = 0; r < keep; r++)
        {
            int i = order[r];
            p[i] = Math.Exp(l[i] / options.Temperature - max);
            sum += p[i];
        }
        for (int r = 0; r < keep; r++) p[order[r]] /= sum;
        if (options.TopP < 1)
        {
            double cum = 0;
            int r = 0;
            while (r < keep && cum < options.TopP) cum += p[order[r++]];
            for (int q = r; q < keep; q++) p[order[q]] = 0;
            for (int q = 0; q < r; q++) p[order[q]] /= cum;
        }
        return p;
    }

    /// <summary>A token drawn from <paramref name="probabilities"/> with one number from <paramref name="generator"/>.</summary>
    public static int Draw(ReadOnlySpan<double> probabilities, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        double u = generator.NextDouble(), cum = 0;
        int last = -1;
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] <= 0) continue;
            cum += probabilities[i];
            last = i;
            if (u < cum) return i;
        }
        return last >= 0 ? last : throw new ArgumentException("Sampler.Draw: no token has positive probability.", nameof(probabilities));
    }

    /// <summary>
    /// Feeds <paramref name="prompt"/> (at least one token) to a decoder of <paramref name="model"/>, then
    /// draws up to <paramref name="maxTokens"/> tokens, each fed back; stops early after
    /// <paramref name="stopToken"/> (which is included). Returns the new tokens only.
    /// </summary>
    public static List<int> Generate(LanguageModel model, IReadOnlyList<int> prompt, int maxTokens, SamplingOptions options,
        Generator generator, int maxContext, int? stopToken = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("Sampler.Generate: the prompt needs at least one token (e.g. the boundary token).", nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        bool training = model.Training;
        model.Eval();
        try
        {
            using var _ = Tensor.NoGrad();
            var decoder = model.StartDecoding(maxContext);
            Tensor logits = null!;
            foreach (int t in prompt) logits = decoder.Append(t);
            var result = new List<int>(maxTokens);
            for (int i = 0; i < maxTokens; i++)
            {
                int next = Draw(Probabilities(logits.ToArray(), options), generator);
                result.Add(next);
                if (next == stopToken || i == maxTokens - 1) break;
                logits = decoder.Append(next);
            }
            return result;
        }
        finally
        {
            model.Train(training);
        }
    }
}

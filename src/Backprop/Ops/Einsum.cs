namespace Backprop;

// Einsum for one or more operands, reduced pairwise from the left; each pairwise contraction is written
// with Permute, Reshape, Sum and a batched MatMul, so gradients and second derivatives come from those ops.
public partial class Tensor
{
    /// <summary>
    /// Einstein summation (torch.einsum): <c>Tensor.Einsum("bhqd,bhkd->bhqk", q, k)</c>. One lowercase or
    /// uppercase letter per dimension; without "->" the output holds the letters that appear once, sorted
    /// (after the "..." dimensions, if any). "..." stands for any number of leading, middle or trailing
    /// dimensions, broadcast across operands like NumPy (aligned from the right). A letter repeated within
    /// one operand takes its diagonal ("ii->i", "ii->": the trace). A dimension of size 1 broadcasts
    /// against the same letter's size in another operand, as in PyTorch.
    /// </summary>
    public static Tensor Einsum(string equation, params Tensor[] operands)
    {
        ArgumentNullException.ThrowIfNull(equation);
        ArgumentNullException.ThrowIfNull(operands);
        var eq = equation.Replace(" ", "", StringComparison.Ordinal);
        var arrow = eq.Split("->");
        if (arrow.Length > 2) throw new ArgumentException($"Einsum: \"{equation}\" has more than one \"->\".");
        var inputs = arrow[0].Split(',');
        if (inputs.Length != operands.Length)
            throw new ArgumentException($"Einsum: \"{equation}\" names {inputs.Length} operands but {operands.Length} were given.");
        foreach (char c in eq)
            if (!char.IsAsciiLetter(c) && c is not ('.' or ',' or '-' or '>'))
                throw new ArgumentException($"Einsum: \"{equation}\": '{c}' is not a subscript letter.");

        // "..." becomes fresh letters: the widest ellipsis gets E of them, a narrower one the last ones.
        var free = new Queue<char>(Enumerable.Range(0, 26).SelectMany(i => new[] { (char)('A' + i), (char)('a' + i) }).Where(c => !eq.Contains(c)));
        int ellipsis = 0;
        for (int k = 0; k < inputs.Length; k++)
        {
            int dots = CountEllipses(inputs[k], equation, $"operand {k}");
            if (dots == 1) ellipsis = Math.Max(ellipsis, operands[k].Rank - (inputs[k].Length - 3));
            else if (inputs[k].Length != operands[k].Rank)
                throw new ShapeException($"Einsum: \"{equation}\": operand {k} has {inputs[k].Length} subscripts but shape {operands[k].Shape}.");
        }
        string ellLetters = string.Concat(Enumerable.Range(0, ellipsis).Select(_ => free.Dequeue()));
        var labels = new string[inputs.Length];
        for (int k = 0; k < inputs.Length; k++)
        {
            int at = inputs[k].IndexOf("...", StringComparison.Ordinal);
            if (at < 0) { labels[k] = inputs[k]; continue; }
            int e = operands[k].Rank - (inputs[k].Length - 3);
            if (e < 0) throw new ShapeException($"Einsum: \"{equation}\": operand {k} has {inputs[k].Length - 3} subscripts besides \"...\" but shape {operands[k].Shape}.");
            labels[k] = inputs[k][..at] + ellLetters[(ellipsis - e)..] + inputs[k][(at + 3)..];
        }

        // sizes: equal, or 1 (broadcast); a letter repeated within one operand must have one size there
        var sizes = new Dictionary<char, int>();
        for (int k = 0; k < labels.Length; k++)
            for (int i = 0; i < labels[k].Length; i++)
            {
                char c = labels[k][i];
                int n = operands[k]._shape[i];
                if (labels[k].IndexOf(c) < i && operands[k]._shape[labels[k].IndexOf(c)] != n)
                    throw new ShapeException($"Einsum: \"{equation}\": subscript '{c}' is repeated in operand {k} (a diagonal) over dimensions of sizes {operands[k]._shape[labels[k].IndexOf(c)]} and {n} (shape {operands[k].Shape}).");
                if (sizes.TryGetValue(c, out int prev) && prev != n && prev != 1 && n != 1)
                    throw new ShapeException(ellLetters.Contains(c)
                        ? $"Einsum: \"{equation}\": the \"...\" dimensions of operand {k} (shape {operands[k].Shape}) do not broadcast against the others' ({prev} vs {n})."
                        : $"Einsum: \"{equation}\": subscript '{c}' has size {prev} in one operand and {n} in operand {k} (shape {operands[k].Shape}).");
                if (!sizes.ContainsKey(c) || prev == 1) sizes[c] = n;   // a size-1 dimension broadcasts to the other's size
            }

        string output;
        if (arrow.Length == 2)
        {
            int dots = CountEllipses(arrow[1], equation, "the output");
            if (dots == 1 && ellipsis == 0 && !inputs.Any(i => i.Contains("...", StringComparison.Ordinal)))
                throw new ArgumentException($"Einsum: \"{equation}\": the output has \"...\" but no operand does.");
            output = arrow[1].Replace("...", ellLetters, StringComparison.Ordinal);
            foreach (char c in arrow[1].Replace("...", "", StringComparison.Ordinal))
            {
                if (!sizes.ContainsKey(c)) throw new ArgumentException($"Einsum: \"{equation}\": output subscript '{c}' appears in no operand.");
                if (output.IndexOf(c) != output.LastIndexOf(c)) throw new ArgumentException($"Einsum: \"{equation}\": output subscript '{c}' appears twice.");
            }
        }
        else
        {
            var once = string.Concat(inputs).Replace("...", "", StringComparison.Ordinal).GroupBy(c => c).Where(g => g.Count() == 1).Select(g => g.Key);
            output = ellLetters + string.Concat(once.OrderBy(c => c, Comparer<char>.Create((a, b) => a.CompareTo(b))));
        }

        // diagonals first (each operand then has every letter once), then size-1 dimensions broadcast
        var ops = new Tensor[operands.Length];
        for (int k = 0; k < operands.Length; k++)
        {
            (ops[k], labels[k]) = TakeDiagonals(operands[k], labels[k]);
            var target = labels[k].Select(c => sizes[c]).ToArray();
            if (!target.AsSpan().SequenceEqual(ops[k]._shape)) ops[k] = ops[k].Expand(target);
        }
        inputs = labels;
        operands = ops;

        // sum away in each operand the letters that appear nowhere else
        var terms = new List<(Tensor T, string L)>();
        for (int k = 0; k < operands.Length; k++)
        {
            string others = output + string.Concat(inputs.Where((_, j) => j != k));
            terms.Add(SumUnique(operands[k], inputs[k], others));
        }
        var (acc, accL) = terms[0];
        for (int k = 1; k < terms.Count; k++)
        {
            string later = output + string.Concat(terms.Skip(k + 1).Select(t => t.L));
            (acc, accL) = Contract(acc, accL, terms[k].T, terms[k].L, later);
        }
        // letters not in the output that survived (single operand) are summed; then order as the output
        (acc, accL) = SumUnique(acc, accL, output);
        if (accL.Length == 0) return acc;
        return accL == output ? acc : acc.Permute([.. output.Select(c => accL.IndexOf(c))]);
    }

    private static int CountEllipses(string subscripts, string equation, string where)
    {
        int dots = subscripts.Count(c => c == '.');
        int ell = subscripts.Split("...").Length - 1;
        if (dots != 3 * ell || ell > 1)
            throw new ArgumentException($"Einsum: \"{equation}\": {where} has {(ell > 1 ? "more than one \"...\"" : "a '.' that is not part of \"...\"")}.");
        return ell;
    }

    /// <summary>For each letter repeated within one operand, the diagonal over its dimensions (times the identity, summed over the repeat).</summary>
    private static (Tensor, string) TakeDiagonals(Tensor t, string labels)
    {
        for (int i = 0; i < labels.Length; i++)
        {
            int j = labels.IndexOf(labels[i], i + 1);
            if (j < 0) continue;
            int n = t._shape[i];
            var eyeShape = Enumerable.Repeat(1, labels.Length).ToArray();
            eyeShape[i] = eyeShape[j] = n;
            var eye = Eye(n, t.DType).To(t.Device).Reshape(eyeShape);
            t = (t * eye).Sum([j]);
            labels = labels.Remove(j, 1);
            i--;   // the same letter may repeat a third time
        }
        return (t, labels);
    }

    private static (Tensor, string) SumUnique(Tensor t, string labels, string keep)
    {
        var dims = new List<int>();
        for (int i = 0; i < labels.Length; i++) if (!keep.Contains(labels[i])) dims.Add(i);
        if (dims.Count == 0) return (t, labels);
        return (t.Sum([.. dims]), string.Concat(labels.Where((_, i) => !dims.Contains(i))));
    }

    /// <summary>Contracts two terms over the letters they share that are not needed later, as one batched MatMul.</summary>
    private static (Tensor, string) Contract(Tensor a, string la, Tensor b, string lb, string later)
    {
        string batch = string.Concat(la.Where(c => lb.Contains(c) && later.Contains(c)));
        string contracted = string.Concat(la.Where(c => lb.Contains(c) && !later.Contains(c)));
        string left = string.Concat(la.Where(c => !lb.Contains(c)));
        string right = string.Concat(lb.Where(c => !la.Contains(c)));
        int Size(Tensor t, string l, string sub) => sub.Aggregate(1, (p, c) => p * t._shape[l.IndexOf(c)]);
        int[] Dims(Tensor t, string l, string sub) => [.. sub.Select(c => t._shape[l.IndexOf(c)])];
        Tensor Arrange(Tensor t, string l, string order) => l == order ? t : t.Permute([.. order.Select(c => l.IndexOf(c))]);

        int nb = Size(a, la, batch), nl = Size(a, la, left), nc = Size(a, la, contracted), nr = Size(b, lb, right);
        var a3 = Arrange(a, la, batch + left + contracted).Reshape(nb, nl, nc);
        var b3 = Arrange(b, lb, batch + contracted + right).Reshape(nb, nc, nr);
        var y = a3.MatMul(b3);
        int[] shape = [.. Dims(a, la, batch), .. Dims(a, la, left), .. Dims(b, lb, right)];
        return (y.Reshape(shape), batch + left + right);
    }
}

namespace Backprop;

// Einsum for one or more operands, reduced pairwise from the left; each pairwise contraction is written
// with Permute, Reshape, Sum and a batched MatMul, so gradients and second derivatives come from those ops.
public partial class Tensor
{
    /// <summary>
    /// Einstein summation (torch.einsum): <c>Tensor.Einsum("bhqd,bhkd->bhqk", q, k)</c>. One lowercase or
    /// uppercase letter per dimension; without "->" the output holds the letters that appear once, sorted.
    /// Letters shared by operands must have equal sizes (no broadcasting); a letter repeated within one
    /// operand (a diagonal) and "..." are not supported.
    /// </summary>
    public static Tensor Einsum(string equation, params Tensor[] operands)
    {
        ArgumentNullException.ThrowIfNull(equation);
        var eq = equation.Replace(" ", "", StringComparison.Ordinal);
        if (eq.Contains("...", StringComparison.Ordinal)) throw new NotSupportedException($"Einsum: \"{equation}\": ellipsis (...) is not supported.");
        var arrow = eq.Split("->");
        if (arrow.Length > 2) throw new ArgumentException($"Einsum: \"{equation}\" has more than one \"->\".");
        var inputs = arrow[0].Split(',');
        if (inputs.Length != operands.Length)
            throw new ArgumentException($"Einsum: \"{equation}\" names {inputs.Length} operands but {operands.Length} were given.");
        var sizes = new Dictionary<char, int>();
        for (int k = 0; k < inputs.Length; k++)
        {
            var labels = inputs[k];
            if (labels.Length != operands[k].Rank)
                throw new ShapeException($"Einsum: \"{equation}\": operand {k} has {labels.Length} subscripts but shape {operands[k].Shape}.");
            for (int i = 0; i < labels.Length; i++)
            {
                char c = labels[i];
                if (!char.IsAsciiLetter(c)) throw new ArgumentException($"Einsum: \"{equation}\": '{c}' is not a subscript letter.");
                if (labels.IndexOf(c) != i) throw new NotSupportedException($"Einsum: \"{equation}\": repeated subscript '{c}' in one operand (a diagonal) is not supported.");
                int n = operands[k]._shape[i];
                if (sizes.TryGetValue(c, out int prev) && prev != n)
                    throw new ShapeException($"Einsum: \"{equation}\": subscript '{c}' has size {prev} in one operand and {n} in operand {k} (shape {operands[k].Shape}).");
                sizes[c] = n;
            }
        }
        string output;
        if (arrow.Length == 2)
        {
            output = arrow[1];
            foreach (char c in output)
            {
                if (!sizes.ContainsKey(c)) throw new ArgumentException($"Einsum: \"{equation}\": output subscript '{c}' appears in no operand.");
                if (output.IndexOf(c) != output.LastIndexOf(c)) throw new ArgumentException($"Einsum: \"{equation}\": output subscript '{c}' appears twice.");
            }
        }
        else
        {
            var counts = string.Concat(inputs).GroupBy(c => c).Where(g => g.Count() == 1).Select(g => g.Key);
            output = string.Concat(counts.OrderBy(c => c, Comparer<char>.Create((a, b) => a.CompareTo(b))));
        }

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

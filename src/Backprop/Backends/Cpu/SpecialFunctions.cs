namespace Backprop.Backends.Cpu;

/// <summary>Functions .NET's Math lacks: the error function and the normal density and distribution.</summary>
public static class SpecialFunctions
{
    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const double OneOverSqrtPi = 0.5641895835477563;

    /// <summary>The error function erf(x), accurate to about 1e-15 relative.</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        double r = a < 3.0 ? ErfSeries(a) : 1.0 - ErfcContinuedFraction(a);
        return x < 0 ? -r : r;
    }

    /// <summary>The complementary error function 1 - erf(x), accurate in the tail.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (x < 3.0) return 1.0 - Erf(x);
        return ErfcContinuedFraction(x);
    }

    // erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·5···(2n+1)): every term is positive, so no cancellation.
    private static double ErfSeries(double x)
    {
        double x2 = x * x;
        double term = x, sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17) break;
        }
        return TwoOverSqrtPi * Math.Exp(-x2) * sum;
    }

    // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated backwards; converges fast for x ≥ 3.
    private static double ErfcContinuedFraction(double x)
    {
        if (x > 27) return 0;
        double f = x;
        for (int k = 60; k >= 1; k--) f = x + k / 2.0 / f;
        return OneOverSqrtPi * Math.Exp(-x * x) / f;
    }

    /// <summary>Fast erf for float32 (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7).</summary>
    public static float ErfFast(float x)
    {
        float a = MathF.Abs(x);
        float t = 1f / (1f + 0.3275911f * a);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float r = 1f - poly * MathF.Exp(-a * a);
        return x < 0 ? -r : r;
    }

    /// <summary>Standard normal density φ(x).</summary>
    public static double NormalPdf(double x) => 0.3989422804014327 * Math.Exp(-0.5 * x * x);

    /// <summary>Standard normal distribution function Φ(x).</summary>
    public static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));
}

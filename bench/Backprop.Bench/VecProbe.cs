using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using Backprop.Backends.Cpu;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Backprop.Bench;

internal static class VecProbe
{
    public static int Run(string[] args)
    {
        Console.WriteLine($"Vector<float>.Count {Vector<float>.Count}, accelerated {Vector.IsHardwareAccelerated}");
        var x = new float[1 << 20];
        var y = new float[1 << 20];
        var r = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() * 6 - 3);
        void T(string name, Action a)
        {
            double best = double.MaxValue;
            for (int i = 0; i < 300; i++)
            {
                long t = Stopwatch.GetTimestamp();
                a();
                best = Math.Min(best, Stopwatch.GetElapsedTime(t).TotalMicroseconds);
            }
            Console.WriteLine($"{name}: {best:F0} µs");
        }
        T("copy", () => x.AsSpan().CopyTo(y));
        T("gelu", () => GeluKernels.Forward(x, y));
        T("exp", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) SimdMath.Exp(new Vector<float>(x, i)).CopyTo(y, i); });
        T("floor", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) Vector.Floor(new Vector<float>(x, i)).CopyTo(y, i); });
        T("cvt", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) Vector.ConvertToSingle(Vector.ConvertToInt32(new Vector<float>(x, i))).CopyTo(y, i); });
        T("div", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) (Vector<float>.One / new Vector<float>(x, i)).CopyTo(y, i); });
        T("select", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) { var v = new Vector<float>(x, i); Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), -v, v).CopyTo(y, i); } });
        T("shift", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) Vector.AsVectorSingle(Vector.ShiftLeft(Vector.AsVectorInt32(new Vector<float>(x, i)), 3)).CopyTo(y, i); });
        T("andnot", () => { for (int i = 0; i < x.Length; i += Vector<float>.Count) { var v = new Vector<float>(x, i); Vector.AndNot(v, Vector.AsVectorSingle(Vector.LessThan(v, Vector<float>.Zero))).CopyTo(y, i); } });
        T("exp512", () => { for (int i = 0; i < x.Length; i += 16) Exp512(Vector512.Create(x.AsSpan(i, 16))).CopyTo(y, i); });
        T("exp512-noscalef", () => { for (int i = 0; i < x.Length; i += 16) Exp512b(Vector512.Create(x.AsSpan(i, 16))).CopyTo(y, i); });
        T("exp256", () => { for (int i = 0; i < x.Length; i += 8) Exp256(Vector256.Create(x.AsSpan(i, 8))).CopyTo(y, i); });
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Exp512(Vector512<float> x)
    {
        var fx = Avx512F.RoundScale(x * Vector512.Create(1.44269504f), 0); // nearest
        var r = x - fx * Vector512.Create(0.693359375f) - fx * Vector512.Create(-2.12194440e-4f);
        var p = Vector512.Create(1.9875691500e-4f) * r + Vector512.Create(1.3981999507e-3f);
        p = p * r + Vector512.Create(8.3334519073e-3f);
        p = p * r + Vector512.Create(4.1665795894e-2f);
        p = p * r + Vector512.Create(1.6666665459e-1f);
        p = p * r + Vector512.Create(5.0000001201e-1f);
        p = p * (r * r) + r + Vector512<float>.One;
        return Avx512F.Scale(p, fx);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Exp512b(Vector512<float> x)
    {
        x = Avx512F.Max(Avx512F.Min(x, Vector512.Create(88.7f)), Vector512.Create(-87.3f));
        var fx = Avx512F.RoundScale(x * Vector512.Create(1.44269504f), 0); // nearest
        var r = x - fx * Vector512.Create(0.693359375f) - fx * Vector512.Create(-2.12194440e-4f);
        var p = Vector512.Create(1.9875691500e-4f) * r + Vector512.Create(1.3981999507e-3f);
        p = p * r + Vector512.Create(8.3334519073e-3f);
        p = p * r + Vector512.Create(4.1665795894e-2f);
        p = p * r + Vector512.Create(1.6666665459e-1f);
        p = p * r + Vector512.Create(5.0000001201e-1f);
        p = p * (r * r) + r + Vector512<float>.One;
        var n = Avx512F.ConvertToVector512Int32(fx);
        return p * Vector512.ShiftLeft(n + Vector512.Create(127), 23).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Exp256(Vector256<float> x)
    {
        x = Avx.Max(Avx.Min(x, Vector256.Create(88.7f)), Vector256.Create(-87.3f));
        var fx = Avx.RoundToNearestInteger(x * Vector256.Create(1.44269504f));
        var r = x - fx * Vector256.Create(0.693359375f) - fx * Vector256.Create(-2.12194440e-4f);
        var p = Vector256.Create(1.9875691500e-4f) * r + Vector256.Create(1.3981999507e-3f);
        p = p * r + Vector256.Create(8.3334519073e-3f);
        p = p * r + Vector256.Create(4.1665795894e-2f);
        p = p * r + Vector256.Create(1.6666665459e-1f);
        p = p * r + Vector256.Create(5.0000001201e-1f);
        p = p * (r * r) + r + Vector256<float>.One;
        var n = Avx.ConvertToVector256Int32(fx);
        return p * Vector256.ShiftLeft(n + Vector256.Create(127), 23).AsSingle();
    }
}

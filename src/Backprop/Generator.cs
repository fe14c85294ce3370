namespace Backprop;

/// <summary>
/// A seeded pseudo-random generator (xoshiro256**): the same seed gives the same numbers on every
/// machine. Its state can be saved and restored, so training runs can be resumed exactly.
/// </summary>
/// <remarks>
/// A generator is not thread-safe: threads that draw random numbers at the same time should each
/// have their own, passed as the <c>generator:</c> argument or made their default with
/// <see cref="Use"/>.
/// </remarks>
public sealed class Generator
{
    private ulong _s0, _s1, _s2, _s3;

    private static Generator _processDefault = new(0);
    [ThreadStatic] private static Generator? t_scoped;
    [ThreadStatic] private static GeneratorScope? t_scope;

    /// <summary>
    /// The generator used when none is passed: the innermost <see cref="Use"/> scope's generator on
    /// this thread, else the process-wide one (seeded with 0 unless reseeded by <see cref="ManualSeed"/>).
    /// </summary>
    public static Generator Default => t_scoped ?? _processDefault;

    /// <summary>Replaces the process-wide default generator with one seeded from <paramref name="seed"/> (a <see cref="Use"/> scope on this thread still takes precedence).</summary>
    public static void ManualSeed(ulong seed) => _processDefault = new Generator(seed);

    /// <summary>
    /// Makes <paramref name="generator"/> the <see cref="Default"/> for the current thread until the
    /// returned scope is disposed, without changing it for other threads:
    /// <c>using (Generator.Use(new Generator(7))) { ... }</c>. Scopes nest; disposing one restores
    /// the default that was in effect when it began.
    /// </summary>
    /// <remarks>
    /// The setting belongs to the thread, not to an async flow: dispose the scope on the thread that
    /// created it (do not await inside it), or a <see cref="InvalidOperationException"/> says so.
    /// </remarks>
    public static GeneratorScope Use(Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        return new GeneratorScope(generator);
    }

    /// <summary>This thread's scoped default, or null.</summary>
    internal static Generator? Scoped => t_scoped;

    /// <summary>Sets this thread's scoped default (the caller's, while a worker runs its chunk); returns the previous one.</summary>
    internal static Generator? SwapScoped(Generator? generator)
    {
        var previous = t_scoped;
        t_scoped = generator;
        return previous;
    }

    internal static void Enter(GeneratorScope scope)
    {
        scope.Outer = t_scope;
        scope.OuterGenerator = t_scoped;
        t_scope = scope;
        t_scoped = scope.Generator;
    }

    internal static void Exit(GeneratorScope scope)
    {
        if (t_scope != scope)
            throw new InvalidOperationException(scope.Owner != Environment.CurrentManagedThreadId
                ? "Generator.Use: a scope must be disposed on the thread that created it (it is not carried across await)."
                : "Generator.Use: scopes must be disposed in the reverse order of their creation.");
        t_scope = scope.Outer;
        t_scoped = scope.OuterGenerator;
        scope.Outer = null;
        scope.OuterGenerator = null;
    }

    /// <summary>Creates a generator from a seed.</summary>
    public Generator(ulong seed) => Seed(seed);

    /// <summary>Creates a generator from a seed.</summary>
    public Generator(int seed) : this(unchecked((ulong)seed)) { }

    /// <summary>Resets the state from a seed (expanded with SplitMix64).</summary>
    public void Seed(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The full generator state (four 64-bit words).</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>Restores a state returned by <see cref="GetState"/>.</summary>
    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 4)
            throw new ArgumentException($"Generator.SetState: expected 4 state words, got {state.Length}.", nameof(state));
        if ((state[0] | state[1] | state[2] | state[3]) == 0)
            throw new ArgumentException("Generator.SetState: the all-zero state is invalid for xoshiro256**.", nameof(state));
        _s0 = state[0]; _s1 = state[1]; _s2 = state[2]; _s3 = state[3];
    }

    /// <summary>Next 64 uniformly random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>
    /// A dropout mask: <c>mask[i] = NextDouble() &lt; p ? 0 : keep</c> for i in order, the same draws and
    /// values as that loop, with the state in registers and the choice made without a branch (a coin toss
    /// per element mispredicts).
    /// </summary>
    internal void FillDropoutMask(Span<float> mask, double p, float keep)
    {
        ulong s0 = _s0, s1 = _s1, s2 = _s2, s3 = _s3;
        int keepBits = BitConverter.SingleToInt32Bits(keep);
        for (int i = 0; i < mask.Length; i++)
        {
            ulong result = ulong.RotateLeft(s1 * 5, 7) * 9, t = s1 << 17;
            s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
            s2 ^= t;
            s3 = ulong.RotateLeft(s3, 45);
            int kept = -(((result >> 11) * (1.0 / (1UL << 53)) < p) ? 0 : 1); // all ones when kept
            mask[i] = BitConverter.Int32BitsToSingle(keepBits & kept); // +0 or keep
        }
        (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);
    }

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, n), without modulo bias.</summary>
    public long NextInt64(long n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Generator.NextInt64: n must be positive.");
        ulong un = (ulong)n;
        ulong threshold = (0UL - un) % un;
        while (true)
        {
            ulong r = NextUInt64();
            ulong hi = Math.BigMul(r, un, out ulong lo);
            if (lo >= threshold) return (long)hi;
        }
    }

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)NextInt64(n);

    /// <summary>Uniform integer in [low, high).</summary>
    public long NextInt64(long low, long high) => low + NextInt64(high - low);

    /// <summary>Standard normal sample (Box-Muller; one sample per two uniforms, no hidden spare).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1]: log is finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A random permutation of 0..n-1 (Fisher-Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        Permutation(p);
        return p;
    }

    /// <summary>Fills <paramref name="dest"/> with a random permutation of 0..dest.Length-1.</summary>
    public void Permutation(Span<int> dest)
    {
        for (int i = 0; i < dest.Length; i++) dest[i] = i;
        Shuffle(dest);
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher-Yates).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

/// <summary>
/// A default generator in effect on one thread until disposed; returned by <see cref="Generator.Use"/>.
/// Disposing it twice does nothing.
/// </summary>
public sealed class GeneratorScope : IDisposable
{
    internal GeneratorScope? Outer;
    internal Generator? OuterGenerator;
    internal readonly int Owner = Environment.CurrentManagedThreadId;
    private bool _disposed;

    internal GeneratorScope(Generator generator)
    {
        Generator = generator;
        Backprop.Generator.Enter(this);
    }

    /// <summary>The generator this scope makes the default.</summary>
    public Generator Generator { get; }

    /// <summary>Restores the default generator in effect before the scope began.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Backprop.Generator.Exit(this);
        _disposed = true;
    }
}

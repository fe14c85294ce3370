namespace Backprop.Backends.Reference;

/// <summary>
/// The reference backend's buffer: every value held as a double (int64 as a long, bool as a byte 0/1), float32 values
/// rounded to float32 when written. Deliberately not the CPU backend's array, so that code which
/// reaches for CPU arrays instead of going through <see cref="IBackend"/> fails on it.
/// </summary>
internal sealed class ReferenceStorage : Storage
{
    private readonly DType _dtype;
    private readonly double[]? _real;
    private readonly long[]? _integer;
    private readonly byte[]? _bytes;

    public ReferenceStorage(DType dtype, int length)
    {
        _dtype = dtype;
        if (dtype == DType.Int64) _integer = new long[length];
        else if (dtype == DType.Bool) _bytes = new byte[length];
        else _real = new double[length];
    }

    public override DType DType => _dtype;
    public override int Length => _real?.Length ?? _integer?.Length ?? _bytes!.Length;
    public override IBackend Backend => ReferenceBackend.Instance;

    public override void Release()
    {
        if (Released || Escaped) return;
        Released = true;
    }

    private void CheckLive()
    {
        if (Released) throw ReleasedError();
    }

    /// <summary>Element <paramref name="i"/> as a double.</summary>
    public double Get(int i)
    {
        CheckLive();
        return _real != null ? _real[i] : _integer != null ? _integer[i] : _bytes![i];
    }

    /// <summary>Element <paramref name="i"/> as a long (int64 storage).</summary>
    public long GetLong(int i)
    {
        CheckLive();
        return _integer != null ? _integer[i] : _bytes != null ? _bytes[i] : checked((long)_real![i]);
    }

    /// <summary>Writes element <paramref name="i"/>, rounding to the storage's dtype.</summary>
    public void Set(int i, double v)
    {
        CheckLive();
        switch (_dtype)
        {
            case DType.Float32: _real![i] = (float)v; break;
            case DType.Float64: _real![i] = v; break;
            case DType.Bool: _bytes![i] = v != 0 ? (byte)1 : (byte)0; break; // NaN is true
            default: _integer![i] = checked((long)v); break;
        }
    }

    /// <summary>Writes element <paramref name="i"/> of an int64 storage.</summary>
    public void SetLong(int i, long v)
    {
        CheckLive();
        if (_integer != null) _integer[i] = v;
        else Set(i, v);
    }
}

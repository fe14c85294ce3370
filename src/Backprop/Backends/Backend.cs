using Backprop.Backends.Cpu;
using Backprop.Backends.Reference;

namespace Backprop.Backends;

/// <summary>Chooses the backend for a device, and the device new tensors are created on.</summary>
public static class Backend
{
    private static Device _default = FromEnvironment();

    /// <summary>
    /// The device that creation functions (Zeros, FromArray, Randn, ...) allocate on; ops allocate
    /// their outputs on their inputs' device. Starts as <see cref="Device.Cpu"/>, or as the value of the
    /// environment variable BACKPROP_DEVICE (<c>cpu</c> or <c>reference</c>).
    /// </summary>
    public static Device Default
    {
        get => _default;
        set => _default = value;
    }

    internal static IBackend DefaultBackend => For(_default);

    internal static IBackend For(Device device) => device switch
    {
        Device.Cpu => CpuBackend.Instance,
        Device.Reference => ReferenceBackend.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(device), device, "Backend: unknown device."),
    };

    private static Device FromEnvironment()
    {
        var v = Environment.GetEnvironmentVariable("BACKPROP_DEVICE");
        if (string.IsNullOrWhiteSpace(v)) return Device.Cpu;
        return v.Trim().ToLowerInvariant() switch
        {
            "cpu" => Device.Cpu,
            "reference" => Device.Reference,
            _ => throw new InvalidOperationException($"BACKPROP_DEVICE: '{v}' is not a device; use cpu or reference."),
        };
    }
}

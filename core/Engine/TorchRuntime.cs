namespace SplitFunctions.Core.Engine;

/// <summary>Process-wide engine settings: threads, seed, device discovery.</summary>
public static class TorchRuntime
{
    private static readonly object Gate = new();
    private static bool configured;

    /// <summary>
    /// Sets the intra-op thread count once per process, to the processor count unless overridden
    /// by SPLITFN_THREADS: libtorch starts with one thread on these machines and loses half the speed.
    /// </summary>
    public static void EnsureConfigured()
    {
        if (configured) return;
        lock (Gate)
        {
            if (configured) return;
            var threads = Environment.ProcessorCount;
            if (int.TryParse(Environment.GetEnvironmentVariable("SPLITFN_THREADS"), out var requested) && requested > 0)
                threads = requested;
            NativeStatus.Check(NativeMethods.sf_set_num_threads(threads));
            configured = true;
        }
    }

    /// <summary>Intra-op threads libtorch uses.</summary>
    public static int Threads
    {
        get { EnsureConfigured(); return NativeMethods.sf_get_num_threads(); }
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            lock (Gate)
            {
                NativeStatus.Check(NativeMethods.sf_set_num_threads(value));
                configured = true;
            }
        }
    }

    /// <summary>Seeds libtorch's generators (CPU and CUDA).</summary>
    public static void Seed(ulong seed)
    {
        EnsureConfigured();
        NativeStatus.Check(NativeMethods.sf_manual_seed(seed));
    }

    /// <summary>Number of CUDA devices this libtorch can use (0 for a CPU build).</summary>
    public static int CudaDeviceCount => NativeMethods.sf_cuda_device_count();

    /// <summary>CUDA when present, CPU otherwise.</summary>
    public static Device DefaultDevice => CudaDeviceCount > 0 ? Device.Cuda : Device.Cpu;

    /// <summary>Parses "auto", "cpu" or "cuda"; "cuda" without a device is an error the caller sees.</summary>
    public static Device ParseDevice(string? name) => (name ?? "auto").Trim().ToLowerInvariant() switch
    {
        "auto" or "" => DefaultDevice,
        "cpu" => Device.Cpu,
        "cuda" or "gpu" => CudaDeviceCount > 0
            ? Device.Cuda
            : throw new DeviceException("device 'cuda' was requested but no CUDA device is usable (CPU libtorch or no GPU); use 'auto' or 'cpu'"),
        var other => throw new ArgumentException($"unknown device '{other}': use auto, cpu or cuda"),
    };

    /// <summary>Version of the native engine ABI.</summary>
    public static int NativeVersion => NativeMethods.sf_version();
}

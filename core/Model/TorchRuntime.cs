using System.Runtime.InteropServices;
using TorchSharp;

namespace SplitFunctions.Core.Model;

/// <summary>Process-wide engine settings: which libtorch is loaded, threads, seed, device selection.</summary>
public static class TorchRuntime
{
    /// <summary>Names a folder with a CUDA libtorch 2.10 and TorchSharp's libLibTorchSharp.so (docs/deploy.md, the GPU image).</summary>
    public const string LibTorchPathVariable = "SPLITFN_LIBTORCH_PATH";

    // libLibTorchSharp.so's dependencies, loaded by full path first so the loader never looks elsewhere for them.
    private static readonly string[] LibTorchLibraries =
        ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly object Gate = new();
    private static bool configured;

    /// <summary>Where libtorch came from: the TorchSharp-cpu package beside the app, or the folder of <see cref="LibTorchPathVariable"/>.</summary>
    public static string LibTorchSource { get; private set; } = "not loaded yet";

    /// <summary>
    /// Loads libtorch (from <see cref="LibTorchPathVariable"/> when set) and sets the intra-op thread count once per
    /// process, to the processor count unless overridden by SPLITFN_THREADS: libtorch may start with fewer here.
    /// Every engine entry point calls this before its first TorchSharp call.
    /// </summary>
    public static void EnsureConfigured()
    {
        if (configured) return;
        lock (Gate)
        {
            if (configured) return;
            LoadLibTorch();
            torch.set_num_threads(DefaultThreads);
            configured = true;
        }
    }

    private static void LoadLibTorch()
    {
        var folder = Environment.GetEnvironmentVariable(LibTorchPathVariable);
        if (string.IsNullOrWhiteSpace(folder))
        {
            LibTorchSource = "TorchSharp-cpu package (beside the application)";
            return;
        }
        var bridge = Path.Combine(folder, "libLibTorchSharp.so");
        if (!File.Exists(bridge))
            throw new DeviceException($"{LibTorchPathVariable} is '{folder}', but it holds no libLibTorchSharp.so; copy TorchSharp's native library beside "
                + $"the CUDA libtorch there, or unset the variable to run on CPU");
        try
        {
            foreach (var name in LibTorchLibraries)
            {
                var path = Path.Combine(folder, name);
                if (File.Exists(path)) NativeLibrary.Load(path);
            }
            // TorchSharp's loader then finds this already loaded library by its name, as its own message advises.
            NativeLibrary.Load(bridge);
        }
        catch (DllNotFoundException e)
        {
            throw new DeviceException($"cannot load libtorch from {LibTorchPathVariable}='{folder}': {e.Message}", e);
        }
        LibTorchSource = folder;
    }

    /// <summary>The thread count a process starts with: SPLITFN_THREADS when set to a positive number, else the processor count.</summary>
    public static int DefaultThreads =>
        int.TryParse(Environment.GetEnvironmentVariable("SPLITFN_THREADS"), out var requested) && requested > 0 ? requested : Environment.ProcessorCount;

    /// <summary>Intra-op threads libtorch uses.</summary>
    public static int Threads
    {
        get { EnsureConfigured(); return torch.get_num_threads(); }
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            EnsureConfigured();
            lock (Gate) torch.set_num_threads(value);
        }
    }

    /// <summary>Seeds libtorch's generators (CPU and CUDA): layers draw their initial weights from them.</summary>
    public static void Seed(ulong seed)
    {
        EnsureConfigured();
        torch.manual_seed(unchecked((long)seed));
        if (CudaDeviceCount > 0) torch.cuda.manual_seed_all(unchecked((long)seed));
    }

    /// <summary>
    /// Seeds, then builds: the two as one step under a process-wide lock, because libtorch's generator is global and a
    /// second thread building at the same time (the function serving two runs, parallel tests) would draw from it in
    /// between and change both networks' initial weights.
    /// </summary>
    public static T Seeded<T>(ulong seed, Func<T> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (SeedLock)
        {
            Seed(seed);
            return build();
        }
    }

    private static readonly Lock SeedLock = new();

    /// <summary>Number of CUDA devices this libtorch can use (0 for the CPU build).</summary>
    public static int CudaDeviceCount
    {
        get
        {
            EnsureConfigured();
            return torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        }
    }

    /// <summary>CUDA device 0 when present, CPU otherwise.</summary>
    public static torch.Device DefaultDevice => CudaDeviceCount > 0 ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;

    /// <summary>Parses "auto", "cpu", "cuda" or "cuda:N"; CUDA that is not there is an error the caller sees.</summary>
    public static torch.Device ParseDevice(string? name)
    {
        var text = (name ?? "auto").Trim().ToLowerInvariant();
        if (text is "auto" or "") return DefaultDevice;
        if (text == "cpu") return torch.CPU;
        if (text is "cuda" or "gpu" || text.StartsWith("cuda:", StringComparison.Ordinal))
        {
            var index = 0;
            if (text.StartsWith("cuda:", StringComparison.Ordinal) && (!int.TryParse(text.AsSpan(5), out index) || index < 0))
                throw new ArgumentException($"unknown device '{name}': use auto, cpu, cuda or cuda:N");
            var count = CudaDeviceCount;
            if (count == 0)
                throw new DeviceException($"device '{text}' was requested but no CUDA device is usable (libtorch from {LibTorchSource} has no CUDA, or no GPU "
                    + $"is visible); use 'auto' or 'cpu', or set {LibTorchPathVariable} to a CUDA libtorch 2.10");
            if (index >= count)
                throw new DeviceException($"device '{text}' was requested but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1})");
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"unknown device '{name}': use auto, cpu, cuda or cuda:N");
    }

    /// <summary>The engine as a run manifest records it, e.g. "TorchSharp 0.107.0 / libtorch 2.10.0".</summary>
    public static string EngineVersion { get; } =
        $"TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)} / libtorch {LibTorchVersion}";

    /// <summary>libtorch version the TorchSharp package is built against (TorchSharp-cpu 0.107.0: 2.10.0).</summary>
    public const string LibTorchVersion = "2.10.0";

    /// <summary>One line for logs: which libtorch runs, on how many threads, with how many CUDA devices.</summary>
    public static string Summary
    {
        get
        {
            EnsureConfigured();
            return $"{EngineVersion} from {LibTorchSource}; {torch.get_num_threads()} threads; {CudaDeviceCount} CUDA device(s)";
        }
    }
}

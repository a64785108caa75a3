using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Model;

/// <summary>A failure inside the engine (TorchSharp/libtorch), carrying a message that names the problem.</summary>
public class EngineException : Exception
{
    public EngineException(string message) : base(message) { }
    public EngineException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A network definition that cannot be built (a layer option out of range).</summary>
public sealed class InvalidNetworkSpecException(string message) : EngineException(message);

/// <summary>Shapes do not fit: between layers, between a buffer and its shape, or between tensors.</summary>
public sealed class TensorShapeException(string message) : EngineException(message);

/// <summary>A loss, input or gradient that must be finite holds NaN or Inf.</summary>
public sealed class NonFiniteValueException(string message) : EngineException(message);

/// <summary>Weights or optimizer state bytes cannot be parsed.</summary>
public sealed class CorruptStateException : EngineException
{
    public CorruptStateException(string message) : base(message) { }
    public CorruptStateException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>Weights or optimizer state belong to a different architecture.</summary>
public sealed class StateMismatchException(string message) : EngineException(message);

/// <summary>The requested device is unavailable or out of memory.</summary>
public sealed class DeviceException : EngineException
{
    public DeviceException(string message) : base(message) { }
    public DeviceException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// TorchSharp reports libtorch failures as <see cref="ExternalException"/> with libtorch's text only; the typed
/// checks happen in C# before each call, and what still escapes becomes an <see cref="EngineException"/> here.
/// </summary>
internal static class LibTorchErrors
{
    public static T Guard<T>(string what, Func<T> call)
    {
        try
        {
            return call();
        }
        catch (Exception e) when (e is ExternalException or ArgumentException)
        {
            throw Classify(what, e);
        }
    }

    /// <summary>libtorch's own errors (ExternalException) and TorchSharp's argument checks (ArgumentException), typed by their text.</summary>
    public static EngineException Classify(string what, Exception e)
    {
        var text = FirstLine(e.Message);
        if (text.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || text.Contains("CUDA", StringComparison.Ordinal))
            return new DeviceException($"{what}: {text}", e);
        if (text.Contains("shape", StringComparison.OrdinalIgnoreCase) || text.Contains("size", StringComparison.OrdinalIgnoreCase)
            || text.Contains("channels", StringComparison.OrdinalIgnoreCase) || text.Contains("dimension", StringComparison.OrdinalIgnoreCase)
            || text.Contains("input", StringComparison.OrdinalIgnoreCase))
            return new TensorShapeException($"{what}: {text}");
        return new EngineException($"{what}: {text}", e);
    }

    // libtorch appends a C++ backtrace to its messages; the first line is the one that names the problem.
    private static string FirstLine(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.Length == 0 ? message : line;
    }
}

using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Engine;

/// <summary>A failure inside the native engine, carrying the engine's own message.</summary>
public class EngineException : Exception
{
    public EngineException(string message) : base(message) { }
    public EngineException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The native status code (see native/include/splitfn_engine.h).</summary>
    public int Status { get; init; }
}

/// <summary>A network spec names an unknown layer or a bad layer option.</summary>
public sealed class InvalidNetworkSpecException(string message) : EngineException(message);

/// <summary>Shapes do not fit: between layers, between a buffer and its shape, or between tensors.</summary>
public sealed class TensorShapeException(string message) : EngineException(message);

/// <summary>A loss, input or gradient that must be finite holds NaN or Inf.</summary>
public sealed class NonFiniteValueException(string message) : EngineException(message);

/// <summary>Weights or optimizer state bytes cannot be parsed.</summary>
public sealed class CorruptStateException(string message) : EngineException(message);

/// <summary>Weights or optimizer state belong to a different architecture.</summary>
public sealed class StateMismatchException(string message) : EngineException(message);

/// <summary>The requested device is unavailable or out of memory.</summary>
public sealed class DeviceException(string message) : EngineException(message);

internal static class NativeStatus
{
    /// <summary>Turns a native status into the matching exception, with the per-thread native message.</summary>
    public static void Check(int status)
    {
        if (status == 0) return;
        var message = Marshal.PtrToStringUTF8(NativeMethods.sf_last_error()) ?? "(no message)";
        throw status switch
        {
            2 => new InvalidNetworkSpecException(message) { Status = status },
            3 => new TensorShapeException(message) { Status = status },
            4 => new NonFiniteValueException(message) { Status = status },
            5 => new CorruptStateException(message) { Status = status },
            6 => new StateMismatchException(message) { Status = status },
            7 => new DeviceException(message) { Status = status },
            1 => new ArgumentException(message),
            _ => new EngineException(message) { Status = status },
        };
    }
}

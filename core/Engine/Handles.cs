using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Engine;

/// <summary>Owns an sf_tensor*.</summary>
internal sealed class TensorHandle : SafeHandle
{
    public TensorHandle() : base(nint.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == nint.Zero;
    protected override bool ReleaseHandle() { NativeMethods.sf_tensor_free(handle); return true; }
}

/// <summary>Owns an sf_network*.</summary>
internal sealed class NetworkHandle : SafeHandle
{
    public NetworkHandle() : base(nint.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == nint.Zero;
    protected override bool ReleaseHandle() { NativeMethods.sf_network_free(handle); return true; }
}

/// <summary>Owns an sf_optimizer*.</summary>
internal sealed class OptimizerHandle : SafeHandle
{
    public OptimizerHandle() : base(nint.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == nint.Zero;
    protected override bool ReleaseHandle() { NativeMethods.sf_optimizer_free(handle); return true; }
}

/// <summary>Copies an engine-owned sf_buffer* out and frees it at once.</summary>
internal static unsafe class NativeBuffer
{
    public static byte[] TakeBytes(nint buffer)
    {
        try
        {
            var length = NativeMethods.sf_buffer_length(buffer);
            var bytes = new byte[length];
            new ReadOnlySpan<byte>(NativeMethods.sf_buffer_data(buffer), checked((int)length)).CopyTo(bytes);
            return bytes;
        }
        finally
        {
            NativeMethods.sf_buffer_free(buffer);
        }
    }
}

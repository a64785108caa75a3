using System.Collections;
using SplitFunctions.Core.Model;
using TorchSharp;
using TorchSharp.PyBridge;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>Compares two server.pt state dicts tensor by tensor, bit for bit (the pickles' bytes may differ where the tensors do not).</summary>
public static class ServerWeights
{
    public static bool Identical(byte[] first, byte[] second, ModelDefinition model)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        ArgumentNullException.ThrowIfNull(model);
        if (first.AsSpan().SequenceEqual(second)) return true;
        using var a = model.BuildServer(model.CutShape);
        using var b = model.BuildServer(model.CutShape);
        a.LoadState(first);
        b.LoadState(second);
        if (!a.StateNames.SequenceEqual(b.StateNames)) return false;
        foreach (var name in a.StateNames)
        {
            using var x = a.GetState(name);
            using var y = b.GetState(name);
            // Bit patterns, not values: -0 against +0 or two NaNs would pass a value comparison.
            if (!x.shape.SequenceEqual(y.shape) || !x.ToFloats().Select(BitConverter.SingleToInt32Bits)
                .SequenceEqual(y.ToFloats().Select(BitConverter.SingleToInt32Bits))) return false;
        }
        return true;
    }

    /// <summary>How many values of a server.pt state dict are NaN or infinite (any mode's server part: read as a plain state dict).</summary>
    public static long NonFinite(byte[] weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        TorchRuntime.EnsureConfigured();
        using var scope = torch.NewDisposeScope();
        using var stream = new MemoryStream(weights, writable: false);
        long count = 0;
        foreach (DictionaryEntry entry in PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true))
        {
            if (entry.Value is torch.Tensor tensor) count += tensor.isfinite().logical_not().sum().item<long>();
        }
        return count;
    }
}

using System.Text;
using SplitFunctions.Core.Model;

using Tensor = TorchSharp.torch.Tensor;

namespace SplitFunctions.Tests.Engine;

/// <summary>The deterministic weights/inputs of tests/golden/make_fixtures.py, computed the same way in C#.</summary>
internal static class GoldenValues
{
    public static uint Fnv1a32(string text)
    {
        var h = 0x811C9DC5u;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            h ^= b;
            h = unchecked(h * 0x01000193u);
        }
        return h;
    }

    public static float[] Values(string key, long count, double bound)
    {
        var h = Fnv1a32(key);
        var values = new float[count];
        for (long j = 0; j < count; j++)
        {
            var mixed = unchecked((ulong)j * 2654435761UL + h) & 0xFFFFFFFFUL;
            var u = mixed / 4294967296.0;
            values[j] = (float)((2.0 * u - 1.0) * bound);
        }
        return values;
    }

    public static double InitBound(long[] shape) =>
        shape.Length >= 2 ? Math.Sqrt(6.0 / shape.Skip(1).Aggregate(1L, (a, b) => a * b)) : 0.05;

    /// <summary>Overwrites every state entry of the network with the formula's values.</summary>
    public static void Initialise(Network network, string prefix)
    {
        foreach (var name in network.StateNames)
        {
            using var current = network.GetState(name);
            var shape = current.shape;
            var key = prefix + "." + name;
            using var value = TensorData.FromFloats(Values(key, current.numel(), InitBound(shape)), shape);
            network.SetState(name, value);
        }
    }

    public static Tensor Input(long[] shape) =>
        TensorData.FromFloats(Values("input", shape.Aggregate(1L, (a, b) => a * b), 1.0), shape);

    public static Tensor Targets(bool classification, int batch) =>
        classification
            ? TensorData.FromFloats(Enumerable.Range(0, batch).Select(j => j % 3 == 0 ? 1f : 0f).ToArray(), [batch, 1])
            : TensorData.FromFloats(Values("target", batch, 1.0), [batch, 1]);
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using SplitFunctions.Core.Audit;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Gaussian noise for the activations a hospital sends, drawn from the operating system's cryptographically secure
/// generator: fresh for every value of every frame, derived from nothing the server holds, so it cannot be
/// regenerated and subtracted. A server that sees the same sample k times (vanilla epochs, repeated validation) and
/// links its copies could average them and reduce the noise to about sigma / sqrt(k); the hospital's secret order makes
/// the linking hard, and the accountant counts every release anyway (docs/privacy.md).
/// </summary>
public static class ActivationNoise
{
    /// <summary>
    /// What one frame releases of <paramref name="rows"/> samples: with a clip norm C (privacy.clipNorm > 0) each sample
    /// is bounded to norm C and gets N(0, (sigma C)^2) per value, a Gaussian mechanism with noise multiplier sigma;
    /// without one, absolute noise N(0, sigma^2) and no guarantee.
    /// </summary>
    public static void Release(Span<float> values, int rows, double noiseSigma, double clipNorm)
    {
        if (clipNorm > 0)
        {
            ActivationClipping.ClipRows(values, rows, clipNorm);
            Add(values, noiseSigma * clipNorm);
        }
        else
        {
            Add(values, noiseSigma);
        }
    }

    /// <summary>Adds N(0, sigma^2) to each value; sigma 0 leaves the values as they are.</summary>
    public static void Add(Span<float> values, double sigma)
    {
        if (!double.IsFinite(sigma) || sigma < 0) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be finite and >= 0");
        if (sigma == 0 || values.IsEmpty) return;
        // Box-Muller: two 53-bit uniforms per pair of values.
        var pairs = (values.Length + 1) / 2;
        var bytes = new byte[pairs * 16];
        RandomNumberGenerator.Fill(bytes);
        for (var p = 0; p < pairs; p++)
        {
            var u1 = ToUnit(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p * 16)));
            var u2 = ToUnit(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(p * 16 + 8)));
            var r = Math.Sqrt(-2 * Math.Log(u1)) * sigma;
            values[2 * p] += (float)(r * Math.Cos(2 * Math.PI * u2));
            if (2 * p + 1 < values.Length) values[2 * p + 1] += (float)(r * Math.Sin(2 * Math.PI * u2));
        }
    }

    // (0, 1]: never 0, so the logarithm is finite.
    private static double ToUnit(ulong bits) => ((bits >> 11) + 1) * (1.0 / (1UL << 53));
}

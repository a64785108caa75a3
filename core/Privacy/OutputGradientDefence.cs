using System.Security.Cryptography;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// The hospital's defence of its labels in U-shaped mode: perturbs each sample's dL/d(server output) before it is
/// sealed (<see cref="GradientDefence"/>). Noise comes from the operating system's CSPRNG, never from a value the server
/// holds (seed, run id, sequence), so the server cannot subtract it.
/// </summary>
public static class OutputGradientDefence
{
    /// <summary>Perturbs <paramref name="gradients"/> ([batch, width] row-major) in place.</summary>
    public static void Apply(Span<float> gradients, int batch, GradientDefence defence)
    {
        ArgumentNullException.ThrowIfNull(defence);
        if (defence.IsOff || batch == 0) return;
        var width = gradients.Length / batch;
        var norms = new double[batch];
        for (var i = 0; i < batch; i++) norms[i] = Norm(gradients.Slice(i * width, width));
        var max = norms.Max();
        if (max == 0) return;
        for (var i = 0; i < batch; i++)
        {
            var row = gradients.Slice(i * width, width);
            // Max-norm: noise whose expected squared norm tops this sample's up to the batch's largest.
            var variance = defence.MaxNorm ? (max * max - norms[i] * norms[i]) / width : 0;
            // Isotropic noise of expected norm ~ multiplier x the largest norm, hiding the direction as well.
            variance += defence.NoiseMultiplier * defence.NoiseMultiplier * max * max / width;
            var sigma = Math.Sqrt(variance);
            for (var k = 0; k < width; k++) row[k] += (float)(sigma * Gaussian());
        }
    }

    private static double Norm(ReadOnlySpan<float> row)
    {
        double sum = 0;
        foreach (var v in row) sum += (double)v * v;
        return Math.Sqrt(sum);
    }

    // Box-Muller over two CSPRNG doubles in (0, 1].
    private static double Gaussian()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        var u1 = ((BitConverter.ToUInt64(bytes) >> 11) + 1.0) / (1UL << 53);
        var u2 = (BitConverter.ToUInt64(bytes[8..]) >> 11) / (double)(1UL << 53);
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

using System.Security.Cryptography;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Metrics;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// The hospital's defence of its labels in U-shaped mode: perturbs each sample's dL/d(server output) before it is
/// sealed (<see cref="GradientDefence"/>). Noise comes from the operating system's CSPRNG, never from a value the server
/// holds (seed, run id, sequence), so the server cannot subtract it.
/// </summary>
public static class OutputGradientDefence
{
    /// <summary>
    /// Perturbs <paramref name="gradients"/> ([batch, width] row-major) in place; <paramref name="labels"/> are the batch's targets (they never leave the
    /// hospital).
    /// </summary>
    public static void Apply(Span<float> gradients, ReadOnlySpan<float> labels, int batch, GradientDefence defence)
    {
        ArgumentNullException.ThrowIfNull(defence);
        if (defence.IsOff || batch == 0) return;
        // Marvell first, on the clean gradients whose class statistics it optimises against; the others act on its output.
        if (defence.MarvellPower > 0) MarvellNoise.Apply(gradients, labels, batch, defence.MarvellPower);
        var width = gradients.Length / batch;
        var norms = new double[batch];
        for (var i = 0; i < batch; i++) norms[i] = Norm(gradients.Slice(i * width, width));
        var max = norms.Max();
        if (max == 0) return;
        // Chosen before any noise is added: the direction the server would use to tell the classes apart.
        var direction = defence.DirectionNoise > 0 ? SeparatingDirection(gradients, labels, batch, width, norms) : null;
        for (var i = 0; i < batch; i++)
        {
            var row = gradients.Slice(i * width, width);
            // Max-norm: noise whose expected squared norm tops this sample's up to the batch's largest.
            var variance = defence.MaxNorm ? (max * max - norms[i] * norms[i]) / width : 0;
            // Isotropic noise of expected norm ~ multiplier x the largest norm, hiding the direction as well.
            variance += defence.NoiseMultiplier * defence.NoiseMultiplier * max * max / width;
            var sigma = Math.Sqrt(variance);
            if (sigma > 0) for (var k = 0; k < width; k++) row[k] += (float)(sigma * Gaussian());
            if (direction is null) continue;
            // One-dimensional noise along the separating direction: a sigmoid/linear tail sends (p - y) / n times its
            // weight row, so the label is in the sign along that one direction; noise there blurs it while the other
            // width - 1 directions, which carry no label, stay clean (far less harm to training than isotropic noise).
            var along = defence.DirectionNoise * max * Gaussian();
            for (var k = 0; k < width; k++) row[k] += (float)(along * direction[k]);
        }
    }

    // Unit vector: mean gradient of the positives minus that of the negatives when the batch has both (binary labels);
    // otherwise the largest row's direction (for a linear tail every row is parallel to it).
    private static double[] SeparatingDirection(ReadOnlySpan<float> gradients, ReadOnlySpan<float> labels, int batch, int width, double[] norms)
    {
        var direction = new double[width];
        int positives = 0, negatives = 0;
        var binary = labels.Length == batch;
        for (var i = 0; i < labels.Length && binary; i++) binary = labels[i] is 0f or 1f;
        if (binary)
        {
            for (var i = 0; i < batch; i++) if (BinaryLabels.IsPositive(labels[i])) positives++; else negatives++;
        }
        if (binary && positives > 0 && negatives > 0)
        {
            for (var i = 0; i < batch; i++)
            {
                var weight = BinaryLabels.IsPositive(labels[i]) ? 1.0 / positives : -1.0 / negatives;
                for (var k = 0; k < width; k++) direction[k] += weight * gradients[i * width + k];
            }
        }
        else
        {
            var largest = Array.IndexOf(norms, norms.Max());
            for (var k = 0; k < width; k++) direction[k] = gradients[largest * width + k];
        }
        var norm = Math.Sqrt(direction.Sum(v => v * v));
        if (norm == 0) return direction;
        for (var k = 0; k < width; k++) direction[k] /= norm;
        return direction;
    }

    private static double Norm(ReadOnlySpan<float> row)
    {
        double sum = 0;
        foreach (var v in row) sum += (double)v * v;
        return Math.Sqrt(sum);
    }

    /// <summary>A standard normal draw: Box-Muller over two CSPRNG doubles in (0, 1].</summary>
    internal static double Gaussian()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        var u1 = ((BitConverter.ToUInt64(bytes) >> 11) + 1.0) / (1UL << 53);
        var u2 = (BitConverter.ToUInt64(bytes[8..]) >> 11) / (double)(1UL << 53);
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

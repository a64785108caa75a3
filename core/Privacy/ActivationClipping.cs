using TorchSharp;

namespace SplitFunctions.Core.Privacy;

/// <summary>
/// Per-sample clipping of the cut activations to L2 norm C (each sample's activations flattened): what bounds one
/// patient's contribution to a release, so the Gaussian noise sigma x C added after it makes every release a Gaussian
/// mechanism with noise multiplier sigma (docs/privacy.md). Absolute noise on unbounded activations is no guarantee:
/// their norm grows as the client trains and the noise shrinks relative to them (issue 29).
/// </summary>
public static class ActivationClipping
{
    /// <summary>
    /// Scales each sample (first dimension) of <paramref name="activations"/> to norm at most <paramref name="clipNorm"/>,
    /// inside the graph, so the client layer's backward sees the clipping the server's gradient was computed through.
    /// </summary>
    public static torch.Tensor Clip(torch.Tensor activations, double clipNorm)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (!(clipNorm > 0) || !double.IsFinite(clipNorm)) throw new ArgumentOutOfRangeException(nameof(clipNorm), clipNorm, "clipNorm must be > 0");
        var n = activations.shape[0];
        using var flat = activations.reshape(n, -1);
        using var norms = flat.norm(1, keepdim: true);
        using var scale = (clipNorm / (norms + 1e-12)).clamp_max(1.0);
        var shape = new long[activations.shape.Length];
        shape[0] = n;
        for (var i = 1; i < shape.Length; i++) shape[i] = 1;
        using var broadcast = scale.reshape(shape);
        return activations * broadcast;
    }

    /// <summary>
    /// The same bound on the values that are released, computed in double precision: a row whose norm float rounding
    /// left above C is scaled down to just under it, so the sensitivity the accountant assumes holds for the bytes sent.
    /// Returns the number of rows scaled.
    /// </summary>
    public static int ClipRows(Span<float> values, int rows, double clipNorm)
    {
        if (rows <= 0 || values.Length % rows != 0) throw new ArgumentException($"{values.Length} values do not split into {rows} rows", nameof(rows));
        var width = values.Length / rows;
        var clipped = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = values.Slice(r * width, width);
            double sum = 0;
            foreach (var v in row) sum += (double)v * v;
            var norm = Math.Sqrt(sum);
            if (norm <= clipNorm) continue;
            // 1 - 1e-6: float rounding of the scaled values cannot bring the norm back above C.
            var scale = clipNorm / norm * (1 - 1e-6);
            for (var i = 0; i < row.Length; i++) row[i] = (float)(row[i] * scale);
            clipped++;
        }
        return clipped;
    }

    /// <summary>The L2 norm of each row.</summary>
    public static double[] RowNorms(ReadOnlySpan<float> values, int rows)
    {
        if (rows <= 0 || values.Length % rows != 0) throw new ArgumentException($"{values.Length} values do not split into {rows} rows", nameof(rows));
        var width = values.Length / rows;
        var norms = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            double sum = 0;
            foreach (var v in values.Slice(r * width, width)) sum += (double)v * v;
            norms[r] = Math.Sqrt(sum);
        }
        return norms;
    }
}

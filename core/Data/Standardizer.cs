namespace SplitFunctions.Core.Data;

/// <summary>Per-column mean and standard deviation, fitted on training rows only and applied to every split.</summary>
public sealed record Standardizer(float[] Mean, float[] Std)
{
    /// <summary>Below this a column is treated as constant and only centred.</summary>
    public const float MinStd = 1e-6f;

    /// <summary>Fits on row-major values with <paramref name="columns"/> per row (population std).</summary>
    public static Standardizer Fit(ReadOnlySpan<float> values, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (values.Length == 0 || values.Length % columns != 0)
            throw new ArgumentException($"{values.Length} values are not whole rows of {columns} columns (and at least one row)", nameof(values));
        var rows = values.Length / columns;
        var sum = new double[columns];
        var sumSquares = new double[columns];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < columns; c++)
            {
                double v = values[r * columns + c];
                sum[c] += v;
                sumSquares[c] += v * v;
            }
        var mean = new float[columns];
        var std = new float[columns];
        for (var c = 0; c < columns; c++)
        {
            var m = sum[c] / rows;
            mean[c] = (float)m;
            std[c] = (float)Math.Sqrt(Math.Max(0, sumSquares[c] / rows - m * m));
        }
        return new Standardizer(mean, std);
    }

    public static Standardizer Fit(TabularDataset training)
    {
        ArgumentNullException.ThrowIfNull(training);
        return Fit(training.Features, training.FeatureCount);
    }

    /// <summary>(x - mean) / std per column, as a new array.</summary>
    public float[] Transform(ReadOnlySpan<float> values)
    {
        var columns = Mean.Length;
        if (values.Length % columns != 0)
            throw new ArgumentException($"{values.Length} values are not whole rows of {columns} columns", nameof(values));
        var result = new float[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var c = i % columns;
            result[i] = (values[i] - Mean[c]) / Math.Max(Std[c], MinStd);
        }
        return result;
    }

    /// <summary>Undoes <see cref="Transform"/> (e.g. a standardised regression target back to mg/dL).</summary>
    public float[] InverseTransform(ReadOnlySpan<float> values)
    {
        var columns = Mean.Length;
        var result = new float[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var c = i % columns;
            result[i] = values[i] * Math.Max(Std[c], MinStd) + Mean[c];
        }
        return result;
    }

    public TabularDataset Transform(TabularDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.FeatureCount != Mean.Length)
            throw new ArgumentException($"fitted on {Mean.Length} columns, given {data.FeatureCount}", nameof(data));
        return data.WithFeatures(Transform(data.Features));
    }
}

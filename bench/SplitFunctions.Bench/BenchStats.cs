namespace SplitFunctions.Bench;

/// <summary>Medians and percentiles of measured figures.</summary>
public static class BenchStats
{
    public static double Median(IEnumerable<double> values) => Percentile(values, 50);

    /// <summary>Nearest-rank percentile (p in 0..100); NaN for no values.</summary>
    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        if (p == 50 && sorted.Length % 2 == 0) return (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    /// <summary>"N threads, C cores": printed beside every figure, as the machine is shared.</summary>
    public static string Machine(int threads) => $"{threads} threads, {Environment.ProcessorCount} cores";
}

namespace SplitFunctions.LocalRun.Reports;

/// <summary>One named line of a line chart: y over x (e.g. loss per epoch); non-finite points leave a gap.</summary>
public sealed record LineSeries(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y)
{
    /// <summary>A series over epochs 1..n.</summary>
    public static LineSeries PerEpoch(string name, IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new LineSeries(name, [.. Enumerable.Range(1, values.Count).Select(i => (double)i)], values);
    }
}

/// <summary>Curves over a shared x axis, with a legend (the paper's Fig. 5 style).</summary>
public sealed record LineChart(string Title, string XLabel, string YLabel, IReadOnlyList<LineSeries> Series);

/// <summary>One bar per category for a named series (e.g. accuracy of each arm at each hospital).</summary>
public sealed record BarSeries(string Name, IReadOnlyList<double> Values);

/// <summary>Bars grouped by category (hospital, arm), one bar per series in each group.</summary>
public sealed record GroupedBarChart(string Title, string YLabel, IReadOnlyList<string> Categories, IReadOnlyList<BarSeries> Series);

/// <summary>Per-sample values whose empirical distribution is drawn.</summary>
public sealed record CdfSeries(string Name, IReadOnlyList<double> Samples);

/// <summary>Empirical cumulative distributions of per-sample errors (the paper's Fig. 9 style): share of samples with error ≤ x.</summary>
public sealed record CdfChart(string Title, string XLabel, IReadOnlyList<CdfSeries> Series);

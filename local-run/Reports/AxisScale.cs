namespace SplitFunctions.LocalRun.Reports;

/// <summary>A linear axis from data to pixels with "nice" round ticks (1, 2, 5 × 10^k steps).</summary>
// A primary constructor, as the old one only copied its arguments; it is no longer private, which opens nothing: Fixed takes the same five values.
internal sealed class AxisScale(double min, double max, double step, double pixelStart, double pixelEnd)
{
    public double Min { get; } = min;
    public double Max { get; } = max;
    public double Step { get; } = step;
    public double PixelStart { get; } = pixelStart;
    public double PixelEnd { get; } = pixelEnd;

    /// <summary>Tick values from Min to Max inclusive.</summary>
    public IEnumerable<double> Ticks
    {
        get
        {
            var count = (int)Math.Round((Max - Min) / Step);
            for (var i = 0; i <= count; i++) yield return Min + i * Step;
        }
    }

    /// <summary>An axis covering the finite values (or [0, 1] when there are none), widened to round ticks.</summary>
    public static AxisScale Fit(IEnumerable<double> values, double pixelStart, double pixelEnd, int targetTicks = 5, bool includeZero = false,
        bool integers = false)
    {
        var finite = values.Where(double.IsFinite).ToList();
        var lo = finite.Count == 0 ? 0 : finite.Min();
        var hi = finite.Count == 0 ? 1 : finite.Max();
        if (includeZero)
        {
            lo = Math.Min(lo, 0);
            hi = Math.Max(hi, 0);
        }
        if (hi - lo < 1e-12 * Math.Max(1, Math.Abs(hi)))
        {
            // A flat series still needs a visible range around it.
            var pad = lo == 0 ? 1 : Math.Abs(lo) * 0.1;
            lo -= includeZero && lo >= 0 ? 0 : pad;
            hi += pad;
        }
        var step = NiceStep((hi - lo) / Math.Max(1, targetTicks - 1));
        // Epochs and counts have no half steps.
        if (integers) step = Math.Max(1, Math.Round(step));
        var min = Math.Floor(lo / step + 1e-9) * step;
        var max = Math.Ceiling(hi / step - 1e-9) * step;
        return new AxisScale(min, max, step, pixelStart, pixelEnd);
    }

    /// <summary>An axis with fixed bounds (e.g. a CDF's [0, 1]).</summary>
    public static AxisScale Fixed(double min, double max, double step, double pixelStart, double pixelEnd) => new(min, max, step, pixelStart, pixelEnd);

    public double ToPixel(double value) => PixelStart + (value - Min) / (Max - Min) * (PixelEnd - PixelStart);

    /// <summary>A tick label with no more decimals than the step needs.</summary>
    public string Label(double value)
    {
        var decimals = Math.Clamp((int)Math.Ceiling(-Math.Log10(Step) - 1e-9), 0, 8);
        if (Math.Abs(value) < Step * 1e-6) value = 0;
        var magnitude = Math.Max(Math.Abs(Min), Math.Abs(Max));
        return magnitude >= 1e5 || (magnitude < 1e-3 && magnitude > 0)
            ? value.ToString("0.##E+0", System.Globalization.CultureInfo.InvariantCulture)
            : value.ToString("F" + decimals, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static double NiceStep(double rough)
    {
        var exponent = Math.Floor(Math.Log10(rough));
        var fraction = rough / Math.Pow(10, exponent);
        var nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
        return nice * Math.Pow(10, exponent);
    }
}

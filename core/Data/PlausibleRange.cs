using System.Globalization;

namespace SplitFunctions.Core.Data;

/// <summary>The closed interval a measurement must lie in to be trusted; values outside it are recording errors.</summary>
public readonly record struct PlausibleRange(double Min, double Max)
{
    public bool Contains(double value) => value >= Min && value <= Max;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"[{Min}, {Max}]");
}

/// <summary>Default plausible ranges for health-screening columns, found by column name (case-insensitive).</summary>
public static class ClinicalRanges
{
    // Wide enough for rare real patients (familial hypercholesterolaemia, chylomicronaemia), narrow enough to catch
    // unit slips and typing errors such as an HDL of 8110 mg/dL. Lipids in mg/dL; values under 10 mg/dL are
    // artefacts (an LDL of 1 is a clipped negative Friedewald estimate, not a measurement).
    private static readonly PlausibleRange Age = new(0, 120);
    private static readonly PlausibleRange Height = new(100, 230);
    private static readonly PlausibleRange Weight = new(20, 300);
    private static readonly PlausibleRange TotalCholesterol = new(50, 1000);
    private static readonly PlausibleRange Hdl = new(10, 250);
    private static readonly PlausibleRange Triglycerides = new(10, 10000);
    private static readonly PlausibleRange Ldl = new(10, 1000);

    public static IReadOnlyDictionary<string, PlausibleRange> Defaults { get; } =
        new Dictionary<string, PlausibleRange>(StringComparer.OrdinalIgnoreCase)
        {
            ["age"] = Age,
            ["height"] = Height,
            ["height_cm"] = Height,
            ["weight"] = Weight,
            ["weight_kg"] = Weight,
            ["tot_chole"] = TotalCholesterol,
            ["total_cholesterol"] = TotalCholesterol,
            ["tc"] = TotalCholesterol,
            ["HDL_chole"] = Hdl,
            ["hdl"] = Hdl,
            ["hdl_c"] = Hdl,
            ["triglyceride"] = Triglycerides,
            ["triglycerides"] = Triglycerides,
            ["tg"] = Triglycerides,
            ["LDL_chole"] = Ldl,
            ["ldl"] = Ldl,
            ["ldl_c"] = Ldl,
        };

    /// <summary>The default range for a column name, or null when none is known.</summary>
    public static PlausibleRange? For(string column) => Defaults.TryGetValue(column, out var range) ? range : null;
}

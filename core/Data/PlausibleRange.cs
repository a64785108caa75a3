using System.Globalization;

namespace SplitFunctions.Core.Data;

/// <summary>The closed interval a measurement must lie in to be trusted; values outside it are recording errors.</summary>
public readonly record struct PlausibleRange(double Min, double Max)
{
    public bool Contains(double value) => value >= Min && value <= Max;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"[{Min}, {Max}]");

    /// <summary>Parses `min:max` (invariant culture), e.g. `1:300`.</summary>
    public static bool TryParse(string text, out PlausibleRange range)
    {
        range = default;
        var parts = text.Split(':');
        if (parts.Length != 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var min)
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var max)
            || !double.IsFinite(min) || !double.IsFinite(max) || min > max)
        {
            return false;
        }
        range = new PlausibleRange(min, max);
        return true;
    }
}

/// <summary>The health-screening measurements the defaults know, whatever a hospital calls the column.</summary>
public enum ClinicalMeasure
{
    Age,
    Height,
    Weight,
    TotalCholesterol,
    Hdl,
    Triglycerides,
    Ldl,
}

/// <summary>
/// Default plausible ranges for health-screening columns, recognised by name (see <see cref="Recognise"/>). Limits sit
/// beyond the rarest real patients, so only recording errors (unit slips, typing errors such as an HDL of 8110 mg/dL)
/// fall outside; docs/experiments.md gives the clinical source of each limit. Lipids in mg/dL, height in cm, weight in kg.
/// </summary>
public static class ClinicalRanges
{
    public static IReadOnlyDictionary<ClinicalMeasure, PlausibleRange> Defaults { get; } = new Dictionary<ClinicalMeasure, PlausibleRange>
    {
        // The oldest (122 years), tallest (272 cm) and heaviest (about 635 kg) people recorded; premature newborns.
        [ClinicalMeasure.Age] = new(0, 125),
        [ClinicalMeasure.Height] = new(20, 275),
        [ClinicalMeasure.Weight] = new(0.2, 650),
        // Abetalipoproteinaemia (TC ~ 30) to homozygous familial hypercholesterolaemia (TC > 1000).
        [ClinicalMeasure.TotalCholesterol] = new(20, 2000),
        // Tangier disease (HDL < 5) to CETP deficiency (HDL well above 150).
        [ClinicalMeasure.Hdl] = new(1, 300),
        // Abetalipoproteinaemia (TG < 30) to familial chylomicronaemia (TG > 10000).
        [ClinicalMeasure.Triglycerides] = new(5, 30000),
        // Abetalipoproteinaemia (LDL near 0) to homozygous familial hypercholesterolaemia (LDL > 1000).
        [ClinicalMeasure.Ldl] = new(1, 2000),
    };

    // Names in normalised form (lower case, letters and digits only): "HDL_chole", "hdl-c" and "HDL C" are all "hdlc"/"hdlchole".
    private static readonly Dictionary<string, ClinicalMeasure> Aliases = new(StringComparer.Ordinal)
    {
        ["age"] = ClinicalMeasure.Age,
        ["ageyears"] = ClinicalMeasure.Age,
        ["ageyrs"] = ClinicalMeasure.Age,
        ["height"] = ClinicalMeasure.Height,
        ["heightcm"] = ClinicalMeasure.Height,
        ["ht"] = ClinicalMeasure.Height,
        ["weight"] = ClinicalMeasure.Weight,
        ["weightkg"] = ClinicalMeasure.Weight,
        ["wt"] = ClinicalMeasure.Weight,
        ["totchole"] = ClinicalMeasure.TotalCholesterol,
        ["totchol"] = ClinicalMeasure.TotalCholesterol,
        ["totalcholesterol"] = ClinicalMeasure.TotalCholesterol,
        ["totalchol"] = ClinicalMeasure.TotalCholesterol,
        ["totalc"] = ClinicalMeasure.TotalCholesterol,
        ["tc"] = ClinicalMeasure.TotalCholesterol,
        ["tchol"] = ClinicalMeasure.TotalCholesterol,
        ["chol"] = ClinicalMeasure.TotalCholesterol,
        ["cholesterol"] = ClinicalMeasure.TotalCholesterol,
        ["serumcholesterol"] = ClinicalMeasure.TotalCholesterol,
        ["cholesteroltotal"] = ClinicalMeasure.TotalCholesterol,
        ["choltotal"] = ClinicalMeasure.TotalCholesterol,
        ["totcholesterol"] = ClinicalMeasure.TotalCholesterol,
        ["cholt"] = ClinicalMeasure.TotalCholesterol,
        ["hdl"] = ClinicalMeasure.Hdl,
        ["hdlc"] = ClinicalMeasure.Hdl,
        ["hdlchole"] = ClinicalMeasure.Hdl,
        ["hdlchol"] = ClinicalMeasure.Hdl,
        ["hdlcholesterol"] = ClinicalMeasure.Hdl,
        ["cholesterolhdl"] = ClinicalMeasure.Hdl,
        ["tg"] = ClinicalMeasure.Triglycerides,
        ["tgs"] = ClinicalMeasure.Triglycerides,
        ["trig"] = ClinicalMeasure.Triglycerides,
        ["trigs"] = ClinicalMeasure.Triglycerides,
        ["triglyceride"] = ClinicalMeasure.Triglycerides,
        ["triglycerides"] = ClinicalMeasure.Triglycerides,
        ["triglycerid"] = ClinicalMeasure.Triglycerides,
        ["triacylglycerol"] = ClinicalMeasure.Triglycerides,
        ["ldl"] = ClinicalMeasure.Ldl,
        ["ldlc"] = ClinicalMeasure.Ldl,
        ["ldlchole"] = ClinicalMeasure.Ldl,
        ["ldlchol"] = ClinicalMeasure.Ldl,
        ["ldlcholesterol"] = ClinicalMeasure.Ldl,
        ["measuredldl"] = ClinicalMeasure.Ldl,
        ["directldl"] = ClinicalMeasure.Ldl,
        ["ldldirect"] = ClinicalMeasure.Ldl,
        ["ldlmeasured"] = ClinicalMeasure.Ldl,
        ["cholesterolldl"] = ClinicalMeasure.Ldl,
    };

    /// <summary>The measurement a column name stands for (case, spaces, '_' and '-' ignored; units in brackets dropped), or null.</summary>
    public static ClinicalMeasure? Recognise(string column)
    {
        ArgumentNullException.ThrowIfNull(column);
        // The defaults are in mg/dL; a column that says mmol/L is another scale and gets no default range.
        if (column.Contains("mmol", StringComparison.OrdinalIgnoreCase)) return null;
        var bracket = column.IndexOfAny(['(', '[']);
        var name = new string([.. (bracket > 0 ? column[..bracket] : column).Where(char.IsAsciiLetterOrDigit).Select(char.ToLowerInvariant)]);
        foreach (var unit in (string[])["mgdl", "cm", "kg"])
        {
            if (name.Length > unit.Length && name.EndsWith(unit, StringComparison.Ordinal)
                && Aliases.ContainsKey(name[..^unit.Length])) name = name[..^unit.Length];
        }
        return Aliases.TryGetValue(name, out var measure) ? measure : null;
    }

    /// <summary>The default range for a column name, or null when the name is not a known measurement.</summary>
    public static PlausibleRange? For(string column) => Recognise(column) is { } measure ? Defaults[measure] : null;
}

namespace SplitFunctions.Core.Data;

/// <summary>Which CSV columns are features and target, how categorical values become numbers, and what is plausible.</summary>
public sealed record ColumnMapping
{
    public ColumnMapping(IReadOnlyList<string> features, string target)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentException.ThrowIfNullOrWhiteSpace(target);
        if (features.Count == 0) throw new ArgumentException("a column mapping needs at least one feature column", nameof(features));
        var duplicate = features.Append(target).GroupBy(f => f, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"column '{duplicate.Key}' is mapped twice", nameof(features));
        Features = features;
        Target = target;
    }

    public IReadOnlyList<string> Features { get; }

    public string Target { get; }

    /// <summary>Per categorical column, the number each text value stands for (e.g. sex: Male=0, Female=1 or "1"=0, "2"=1).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> Categorical { get; init; } =
        new Dictionary<string, IReadOnlyDictionary<string, double>>();

    /// <summary>
    /// Plausible ranges per numeric column; columns not listed fall back to <see cref="ClinicalRanges"/> when <see cref="UseDefaultRanges"/>.
    /// </summary>
    public IReadOnlyDictionary<string, PlausibleRange> Ranges { get; init; } = new Dictionary<string, PlausibleRange>();

    public bool UseDefaultRanges { get; init; } = true;

    /// <summary>Total cholesterol, HDL and triglyceride columns named explicitly (Friedewald baseline, lipid ranges); null: found by name.</summary>
    public LipidColumns? Lipids { get; init; }

    /// <summary>The lipid columns: the explicit ones, else those found among the features by their usual names.</summary>
    public LipidColumns? LipidColumns => Lipids ?? Data.LipidColumns.Find(Features);

    /// <summary>
    /// Numbers per row the network receives: each mapped feature is one input (a categorical column becomes its one
    /// numeric code), so this is the width of a tabular model's first layer.
    /// </summary>
    public int EncodedWidth => Features.Count;

    /// <summary>Mapped columns, features first, then the target.</summary>
    public IEnumerable<string> Columns => Features.Append(Target);

    /// <summary>The range a numeric column is checked against, or null for none.</summary>
    public PlausibleRange? RangeFor(string column)
    {
        if (Ranges.TryGetValue(column, out var range)) return range;
        if (!UseDefaultRanges) return null;
        // An explicitly named lipid column gets its measure's range whatever it is called.
        var named = Lipids?.Columns.FirstOrDefault(c => c.Column == column);
        return named is { Column: not null } n ? ClinicalRanges.Defaults[n.Measure] : ClinicalRanges.For(column);
    }

    /// <summary>
    /// The paper's LDL task on the NHIS lipids file: age, sex, height, weight, TC, HDL, TG to LDL. Its LDL column holds
    /// values of 1 mg/dL that are clipped negative Friedewald estimates rather than measurements, so LDL starts at 10 here.
    /// </summary>
    public static ColumnMapping NhisLipids { get; } =
        new(["age", "sex", "height", "weight", "tot_chole", "HDL_chole", "triglyceride"], "LDL_chole")
        {
            Categorical = new Dictionary<string, IReadOnlyDictionary<string, double>>
            {
                ["sex"] = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase) { ["Male"] = 0, ["Female"] = 1 },
            },
            Ranges = new Dictionary<string, PlausibleRange> { ["LDL_chole"] = new(10, 2000) },
        };
}

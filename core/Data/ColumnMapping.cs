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

    /// <summary>Plausible ranges per numeric column; columns not listed fall back to <see cref="ClinicalRanges"/> when <see cref="UseDefaultRanges"/>.</summary>
    public IReadOnlyDictionary<string, PlausibleRange> Ranges { get; init; } = new Dictionary<string, PlausibleRange>();

    public bool UseDefaultRanges { get; init; } = true;

    /// <summary>Mapped columns, features first, then the target.</summary>
    public IEnumerable<string> Columns => Features.Append(Target);

    /// <summary>The range a numeric column is checked against, or null for none.</summary>
    public PlausibleRange? RangeFor(string column) =>
        Ranges.TryGetValue(column, out var range) ? range : UseDefaultRanges ? ClinicalRanges.For(column) : null;

    /// <summary>The paper's LDL task on ../shared/data/lipids/nhis_lipids.csv: age, sex, height, weight, TC, HDL, TG to LDL.</summary>
    public static ColumnMapping NhisLipids { get; } =
        new(["age", "sex", "height", "weight", "tot_chole", "HDL_chole", "triglyceride"], "LDL_chole")
        {
            Categorical = new Dictionary<string, IReadOnlyDictionary<string, double>>
            {
                ["sex"] = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase) { ["Male"] = 0, ["Female"] = 1 },
            },
        };
}

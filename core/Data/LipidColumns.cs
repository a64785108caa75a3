namespace SplitFunctions.Core.Data;

/// <summary>
/// The three columns the Friedewald estimate needs (mg/dL), named explicitly or found among the mapped features by
/// their usual names (<see cref="ClinicalRanges.Recognise"/>: tot_chole, total_cholesterol, TC, HDL_chole, hdl-c, TG, ...).
/// </summary>
public sealed record LipidColumns(string TotalCholesterol, string Hdl, string Triglycerides)
{
    /// <summary>The column of each measure, for range checks.</summary>
    public IEnumerable<(string Column, ClinicalMeasure Measure)> Columns =>
        [(TotalCholesterol, ClinicalMeasure.TotalCholesterol), (Hdl, ClinicalMeasure.Hdl), (Triglycerides, ClinicalMeasure.Triglycerides)];

    /// <summary>The lipid columns among <paramref name="features"/> by name, or null unless all three are there exactly once.</summary>
    public static LipidColumns? Find(IReadOnlyList<string> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        string? One(ClinicalMeasure measure)
        {
            var found = features.Where(f => ClinicalRanges.Recognise(f) == measure).ToList();
            return found.Count == 1 ? found[0] : null;
        }
        return One(ClinicalMeasure.TotalCholesterol) is { } tc && One(ClinicalMeasure.Hdl) is { } hdl && One(ClinicalMeasure.Triglycerides) is { } tg
            ? new LipidColumns(tc, hdl, tg)
            : null;
    }

    /// <summary>
    /// Parses `tc=COLUMN,hdl=COLUMN,tg=COLUMN` (any order; keys total-cholesterol/tc, hdl, triglycerides/tg). Every
    /// column must be one of <paramref name="features"/>; a problem is an <see cref="ArgumentException"/> saying which.
    /// </summary>
    public static LipidColumns Parse(string text, IReadOnlyList<string> features)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(features);
        var named = new Dictionary<ClinicalMeasure, string>();
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq > 0 ? pair[..eq].Trim().ToLowerInvariant() : "";
            var column = eq > 0 ? pair[(eq + 1)..].Trim() : "";
            ClinicalMeasure? measure = key switch
            {
                "tc" or "total-cholesterol" or "total_cholesterol" or "cholesterol" => ClinicalMeasure.TotalCholesterol,
                "hdl" => ClinicalMeasure.Hdl,
                "tg" or "triglycerides" or "triglyceride" => ClinicalMeasure.Triglycerides,
                _ => null,
            };
            if (measure is null || column.Length == 0)
                throw new ArgumentException($"'{pair}' is not tc=COLUMN, hdl=COLUMN or tg=COLUMN (e.g. tc=chol_total,hdl=hdl_c,tg=trigs)");
            if (!features.Contains(column, StringComparer.Ordinal))
                throw new ArgumentException($"lipid column '{column}' is not a mapped feature; the features are: {string.Join(", ", features)}");
            named[measure.Value] = column;
        }
        foreach (var needed in (ClinicalMeasure[])[ClinicalMeasure.TotalCholesterol, ClinicalMeasure.Hdl, ClinicalMeasure.Triglycerides])
        {
            if (!named.ContainsKey(needed)) throw new ArgumentException($"'{text}' does not name the {needed} column: give tc=, hdl= and tg=");
        }
        return new LipidColumns(named[ClinicalMeasure.TotalCholesterol], named[ClinicalMeasure.Hdl], named[ClinicalMeasure.Triglycerides]);
    }
}

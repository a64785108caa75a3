using System.Globalization;

namespace SplitFunctions.LocalRun.Reports;

/// <summary>A table of text cells for the HTML report and Markdown (results like the paper's Tables 5-7).</summary>
public sealed record ReportTable(IReadOnlyList<string> Headers, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    /// <summary>An optional line shown above the table.</summary>
    public string? Caption { get; init; }

    /// <summary>Columns to right-align (numbers); by default every column but the first.</summary>
    public IReadOnlySet<int>? RightAligned { get; init; }

    public bool IsRightAligned(int column) => RightAligned?.Contains(column) ?? column > 0;

    /// <summary>A number with fixed decimals, or "n/a" where it is undefined (e.g. AUC with one class).</summary>
    public static string Number(double value, int decimals = 4) =>
        double.IsFinite(value) ? value.ToString("F" + decimals, CultureInfo.InvariantCulture) : "n/a";

    /// <summary>A share as a percentage (0.985 -> "98.50%").</summary>
    public static string Percent(double share, int decimals = 2) =>
        double.IsFinite(share) ? (share * 100).ToString("F" + decimals, CultureInfo.InvariantCulture) + "%" : "n/a";
}

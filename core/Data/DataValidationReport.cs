using System.Globalization;
using System.Text;

namespace SplitFunctions.Core.Data;

/// <summary>Why a row was not used.</summary>
public enum DropReason
{
    /// <summary>Empty or a missing marker (NA, NaN, null).</summary>
    Missing,
    /// <summary>Not a number where a number is expected.</summary>
    NotANumber,
    /// <summary>A categorical value the mapping does not know.</summary>
    UnknownCategory,
    /// <summary>Outside the column's plausible range.</summary>
    OutOfRange,
}

/// <summary>How many rows of a column failed for one reason, with the first few line numbers to look at.</summary>
public sealed record DropCount(DropReason Reason, string Column, int Rows, IReadOnlyList<long> FirstLines);

/// <summary>
/// What validation did to a file: rows read, kept and dropped, and per reason and column how many rows failed.
/// A row failing in several columns counts once in <see cref="DroppedRows"/> and once per failing column.
/// </summary>
public sealed class DataValidationReport
{
    private const int LinesKept = 5;
    private readonly Dictionary<(DropReason, string), (int Rows, List<long> Lines)> _counts = [];

    public DataValidationReport(string source) => Source = source;

    public string Source { get; }
    public int TotalRows { get; private set; }
    public int DroppedRows { get; private set; }
    public int KeptRows => TotalRows - DroppedRows;

    /// <summary>Counts in a stable order: by reason, then column.</summary>
    public IReadOnlyList<DropCount> Drops =>
        [.. _counts.OrderBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal)
            .Select(kv => new DropCount(kv.Key.Item1, kv.Key.Item2, kv.Value.Rows, kv.Value.Lines))];

    /// <summary>Rows that failed <paramref name="column"/> for <paramref name="reason"/>.</summary>
    public int Count(DropReason reason, string column) => _counts.TryGetValue((reason, column), out var c) ? c.Rows : 0;

    /// <summary>Rows that failed for <paramref name="reason"/> in any column (a row counts once per failing column).</summary>
    public int Count(DropReason reason) => _counts.Where(kv => kv.Key.Item1 == reason).Sum(kv => kv.Value.Rows);

    internal void AddRow(bool dropped)
    {
        TotalRows++;
        if (dropped) DroppedRows++;
    }

    internal void AddProblem(DropReason reason, string column, long line)
    {
        if (!_counts.TryGetValue((reason, column), out var entry)) entry = (0, []);
        if (entry.Lines.Count < LinesKept) entry.Lines.Add(line);
        _counts[(reason, column)] = (entry.Rows + 1, entry.Lines);
    }

    /// <summary>A summary for logs: one line per reason and column.</summary>
    public override string ToString()
    {
        var text = new StringBuilder($"{Source}: {TotalRows} rows, {KeptRows} kept, {DroppedRows} dropped");
        foreach (var d in Drops)
            text.Append(CultureInfo.InvariantCulture, $"\n  {d.Reason} in '{d.Column}': {d.Rows} rows (lines "
                + $"{string.Join(", ", d.FirstLines)}{(d.Rows > d.FirstLines.Count ? ", ..." : "")})");
        return text.ToString();
    }
}

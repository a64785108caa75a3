using System.Globalization;
using CsvHelper;

namespace SplitFunctions.Core.Data;

/// <summary>Loads a CSV through a <see cref="ColumnMapping"/>, dropping and reporting rows with missing or implausible values.</summary>
public static class CsvTabularLoader
{
    private static readonly HashSet<string> MissingMarkers = new(StringComparer.OrdinalIgnoreCase) { "", "NA", "N/A", "NaN", "null", "None", "." };

    public static TabularDataset Load(string path, ColumnMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(mapping);
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found. Check the --data path; the folder must be readable by the agent's account.");
        using var reader = new StreamReader(path);
        return Load(reader, mapping, path);
    }

    /// <summary>Loads from a reader; <paramref name="source"/> names it in errors and in the report.</summary>
    public static TabularDataset Load(TextReader text, ColumnMapping mapping, string source)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        // A row with too many or too few fields, or a quote never closed (it would swallow the lines after it), is a broken
        // file, not a dirty value: reject it with its line rather than keep or drop rows silently.
        var options = new CsvReaderOptions
        {
            TrimWhitespace = true,
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Throw,
            FieldCountMismatch = CsvFieldCountHandling.Throw,
        };
        using var csv = CsvReader.Create(text, options, leaveOpen: true);
        var header = csv.Headers.ToArray();
        if (header.Length == 0)
            throw new DataFormatException(source, "the file is empty; expected a header line naming the columns.");

        var columns = mapping.Columns.ToArray();
        var positions = RequireColumns(header, mapping, source);

        var report = new DataValidationReport(source);
        var featureCount = mapping.Features.Count;
        var features = new List<float>();
        var targets = new List<float>();
        var row = new float[columns.Length];
        while (ReadRow(csv, header.Length, source))
        {
            var line = csv.LineNumber;
            var ok = true;
            for (var c = 0; c < columns.Length; c++)
            {
                var cell = csv.GetString(positions[c]);
                var problem = Parse(mapping, columns[c], cell, out var value);
                if (problem is { } reason)
                {
                    report.AddProblem(reason, columns[c], line);
                    ok = false;
                }
                // Finite as a double but not as the float it is trained as (1e39 became +Infinity and failed later, deep in
                // training, with a stack trace): the file is wrong at this spot, so say where.
                if (problem is null && !float.IsFinite((float)value))
                {
                    throw new DataFormatException(source, string.Create(CultureInfo.InvariantCulture,
                        $"line {line}, column '{columns[c]}': {Printable(cell)} is beyond the range of a 32-bit float (about ±3.4e38). Fix the value "
                            + $"(or mark it missing) and run again."));
                }
                row[c] = (float)value;
            }
            report.AddRow(dropped: !ok);
            if (!ok) continue;
            for (var c = 0; c < featureCount; c++) features.Add(row[c]);
            targets.Add(row[featureCount]);
        }
        return new TabularDataset([.. features], [.. targets], mapping.Features, mapping.Target, report);
    }

    private static bool ReadRow(CsvReader csv, int headerFields, string source)
    {
        try
        {
            return csv.Read();
        }
        catch (CsvFormatException e)
        {
            var problem = e.Message.Contains("field", StringComparison.OrdinalIgnoreCase) && !e.Message.Contains("quot", StringComparison.OrdinalIgnoreCase)
                ? $"the row has a different number of fields than the header's {headerFields}"
                : "a quote is not closed or is misplaced";
            throw new DataFormatException(source, string.Create(CultureInfo.InvariantCulture,
                $"line {e.LineNumber}: {problem}. Fix that line (quote values that contain commas or quotes), then run again."), e);
        }
    }

    /// <summary>The header line of a CSV file (its column names), for checking a mapping before anything starts.</summary>
    public static IReadOnlyList<string> ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new DataFormatException(path, "file not found. Check the --data path; the folder must be readable by the agent's account.");
        using var reader = new StreamReader(path);
        using var csv = CsvReader.Create(reader, new CsvReaderOptions { TrimWhitespace = true }, leaveOpen: true);
        var header = csv.Headers.ToArray();
        if (header.Length == 0)
            throw new DataFormatException(path, "the file is empty; expected a header line naming the columns.");
        return header;
    }

    /// <summary>Where each mapped column (features, then target) sits in <paramref name="header"/>; an unknown column lists the header's.</summary>
    public static int[] RequireColumns(IReadOnlyList<string> header, ColumnMapping mapping, string source)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(mapping);
        var columns = mapping.Columns.ToArray();
        var positions = new int[columns.Length];
        for (var c = 0; c < columns.Length; c++)
        {
            positions[c] = header.ToList().IndexOf(columns[c]);
            if (positions[c] < 0)
                throw new DataFormatException(source, $"mapped column '{columns[c]}' is not in the header. The header has: {string.Join(", ", header)}. Fix "
                    + $"the column mapping (names are case-sensitive).");
        }
        return positions;
    }

    // A cell as it may be shown on one line: at most 40 characters, control characters escaped.
    private static string Printable(string text) => "'" + CommandLine.Printable.Escape(text.Length > 40 ? text[..40] + "..." : text) + "'";

    private static DropReason? Parse(ColumnMapping mapping, string column, string text, out double value)
    {
        value = 0;
        if (MissingMarkers.Contains(text)) return DropReason.Missing;
        if (mapping.Categorical.TryGetValue(column, out var categories))
            return categories.TryGetValue(text, out value) ? null : DropReason.UnknownCategory;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) || !double.IsFinite(value))
            return DropReason.NotANumber;
        return mapping.RangeFor(column) is { } range && !range.Contains(value) ? DropReason.OutOfRange : null;
    }
}

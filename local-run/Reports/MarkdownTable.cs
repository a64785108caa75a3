using System.Text;

namespace SplitFunctions.LocalRun.Reports;

/// <summary>Writes a <see cref="ReportTable"/> as a GitHub-flavoured Markdown table (for docs/results.md).</summary>
public static class MarkdownTable
{
    public static string Write(ReportTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var text = new StringBuilder();
        if (table.Caption is { } caption) text.Append(Cell(caption)).Append("\n\n");
        text.Append("| ").AppendJoin(" | ", table.Headers.Select(Cell)).Append(" |\n");
        text.Append('|').AppendJoin('|', table.Headers.Select((_, c) => table.IsRightAligned(c) ? " ---: " : " --- ")).Append("|\n");
        foreach (var row in table.Rows)
        {
            var cells = Enumerable.Range(0, table.Headers.Count).Select(c => c < row.Count ? Cell(row[c]) : "");
            text.Append("| ").AppendJoin(" | ", cells).Append(" |\n");
        }
        return text.ToString();
    }

    // A pipe would end the cell and a newline the row; backslashes escape Markdown's own escapes.
    private static string Cell(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("|", "\\|", StringComparison.Ordinal)
            .Replace("\r\n", " ", StringComparison.Ordinal)
            .Replace('\n', ' ')
            .Replace('\r', ' ');
}

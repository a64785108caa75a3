using System.Globalization;
using System.Net;
using System.Text;

namespace SplitFunctions.LocalRun.Reports;

/// <summary>
/// A self-contained HTML report: headings, text, inline SVG charts, tables and the run configuration; one file, no scripts, no external URLs.
/// </summary>
public sealed class HtmlReport(string title)
{
    private readonly List<string> _sections = [];

    public string Title { get; } = title ?? throw new ArgumentNullException(nameof(title));

    public HtmlReport AddHeading(string text) => Add($"<h2>{Html(text)}</h2>");

    public HtmlReport AddParagraph(string text) => Add($"<p>{Html(text)}</p>");

    public HtmlReport AddChart(LineChart chart) => Figure(SvgChartRenderer.Render(chart));

    public HtmlReport AddChart(GroupedBarChart chart) => Figure(SvgChartRenderer.Render(chart));

    public HtmlReport AddChart(CdfChart chart) => Figure(SvgChartRenderer.Render(chart));

    public HtmlReport AddTable(ReportTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var html = new StringBuilder("<table>");
        if (table.Caption is { } caption) html.Append(CultureInfo.InvariantCulture, $"<caption>{Html(caption)}</caption>");
        html.Append("<thead><tr>");
        for (var c = 0; c < table.Headers.Count; c++) html.Append(CultureInfo.InvariantCulture, $"<th{Align(table, c)}>{Html(table.Headers[c])}</th>");
        html.Append("</tr></thead><tbody>\n");
        foreach (var row in table.Rows)
        {
            html.Append("<tr>");
            for (var c = 0; c < table.Headers.Count; c++)
                html.Append(CultureInfo.InvariantCulture, $"<td{Align(table, c)}>{Html(c < row.Count ? row[c] : "")}</td>");
            html.Append("</tr>\n");
        }
        return Add(html.Append("</tbody></table>").ToString());
    }

    /// <summary>The settings a reader needs to repeat the run (dataset, model, mode, seed, ...), as a definition list.</summary>
    public HtmlReport AddConfiguration(IEnumerable<KeyValuePair<string, string>> settings, string heading = "Run configuration")
    {
        ArgumentNullException.ThrowIfNull(settings);
        var html = new StringBuilder().Append(CultureInfo.InvariantCulture, $"<section class=\"configuration\"><h2>{Html(heading)}</h2><dl>\n");
        foreach (var (key, value) in settings) html.Append(CultureInfo.InvariantCulture, $"<dt>{Html(key)}</dt><dd>{Html(value)}</dd>\n");
        return Add(html.Append("</dl></section>").ToString());
    }

    public string ToHtml()
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append(CultureInfo.InvariantCulture, $"<title>{Html(Title)}</title>\n<style>\n{Style}</style>\n</head>\n<body>\n");
        html.Append(CultureInfo.InvariantCulture, $"<h1>{Html(Title)}</h1>\n");
        foreach (var section in _sections) html.Append(section).Append('\n');
        return html.Append("</body>\n</html>\n").ToString();
    }

    /// <summary>Writes the report, creating the folder; written to a temporary file first so a reader never sees half a page.</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        // A report may embed the audit's pictures of patients: owner-only (0600 in a 0700 folder).
        SplitFunctions.Core.Audit.PrivateFiles.CreateFolder(folder, narrowExisting: false);
        var temporary = path + ".tmp";
        SplitFunctions.Core.Audit.PrivateFiles.WriteAllText(temporary, ToHtml());
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>A PNG picture, embedded (the report stays one self-contained file).</summary>
    public HtmlReport AddImage(byte[] png, string caption)
    {
        ArgumentNullException.ThrowIfNull(png);
        return Add($"<figure><img alt=\"{Html(caption)}\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\" "
            + $"style=\"max-width:100%;image-rendering:pixelated\"><figcaption>{Html(caption)}</figcaption></figure>");
    }

    private HtmlReport Figure(string svg) => Add($"<figure>{svg}</figure>");

    private HtmlReport Add(string html)
    {
        _sections.Add(html);
        return this;
    }

    private static string Align(ReportTable table, int column) => table.IsRightAligned(column) ? " class=\"num\"" : "";

    private static string Html(string text) => WebUtility.HtmlEncode(text);

    private const string Style = """
        body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }
        h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
        figure { margin: 1em 0; } svg.chart { max-width: 100%; height: auto; border: 1px solid #eee; }
        table { border-collapse: collapse; margin: 1em 0; } caption { text-align: left; font-weight: bold; padding-bottom: .4em; }
        th, td { border: 1px solid #ccc; padding: .3em .7em; } th { background: #f4f4f4; } .num { text-align: right; font-variant-numeric: tabular-nums; }
        dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; } dt { font-weight: bold; } dd { margin: 0; font-family: monospace; }

        """;
}

using System.Text.RegularExpressions;
using System.Xml.Linq;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.Tests.Reports;

/// <summary>The HTML report: self-contained, escaped, and rendered with its charts by a real browser.</summary>
public sealed partial class HtmlReportTests
{
    [Fact]
    public void Report_RendersInHeadlessChromium_WithEveryChart()
    {
        using var dir = new TempDirectory();
        var path = dir.File("report.html");
        SampleReport().Save(path);

        var (dom, log) = HeadlessChromium.DumpDom(path, TimeSpan.FromSeconds(120));

        dom.Should().Contain("<h1>Split learning &lt;demo&gt; &amp; baselines</h1>");
        Count(dom, "<svg").Should().Be(3, "a line chart, a bar chart and a CDF chart were added");
        Count(dom, "<polyline").Should().Be(4, "two loss curves and two CDF curves");
        Count(dom, "<rect class=\"bar\"").Should().Be(6, "three hospitals x two arms");
        Count(dom, "<table>").Should().Be(1);
        dom.Should().Contain("<dt>seed</dt>");
        // No script ran and nothing was fetched: the log holds no console or network errors.
        log.Should().NotContainAny("Uncaught", "CONSOLE", "net::ERR_", "Failed to load resource");
    }

    [Fact]
    public void Report_IsSelfContained_AndEachChartIsWellFormedSvg()
    {
        var html = SampleReport().ToHtml();
        html.Should().NotContainAny("http://", "https://", "<script", "src=", "@import");
        foreach (Match svg in SvgPattern().Matches(html))
        {
            var doc = XDocument.Parse(svg.Value);
            doc.Root!.Name.LocalName.Should().Be("svg");
        }
        SvgPattern().Matches(html).Should().HaveCount(3);
    }

    [Fact]
    public void AllText_IsEscaped()
    {
        var report = new HtmlReport("<script>alert(1)</script>")
            .AddParagraph("a < b & \"c\"")
            .AddTable(new ReportTable(["<th>"], [["<td>"]]))
            .AddConfiguration([new("<k>", "<v>")])
            .AddChart(new LineChart("<t>", "<x>", "<y>", [LineSeries.PerEpoch("<s>", [1, 2])]));
        var html = report.ToHtml();
        html.Should().NotContain("<script>").And.NotContain("<s>").And.NotContain("<k>").And.NotContain("<td><td>");
        html.Should().Contain("&lt;script&gt;alert(1)&lt;/script&gt;").And.Contain("a &lt; b &amp; &quot;c&quot;");
    }

    [Fact]
    public void LineChart_HasTicksAndALegendEntryPerSeries()
    {
        var svg = SvgChartRenderer.Render(new LineChart("Loss", "epoch", "loss",
            [LineSeries.PerEpoch("train", [0.9, 0.5, 0.3]), LineSeries.PerEpoch("validation", [1.0, 0.7, double.NaN])]));
        Count(svg, "class=\"legend\"").Should().Be(2);
        svg.Should().Contain(">train<").And.Contain(">validation<").And.Contain(">epoch<");
        // Round ticks: the y axis of 0.3..1.0 is labelled in steps of 0.2, epochs in whole numbers.
        svg.Should().Contain(">0.2<").And.Contain(">1.0<");
        svg.Should().Contain(">2<").And.NotContain(">1.5<");
        Count(svg, "<polyline").Should().Be(2, "the NaN point is left out, not drawn at 0");
    }

    [Fact]
    public void CdfChart_RisesToOne()
    {
        var svg = SvgChartRenderer.Render(new CdfChart("Errors", "abs error (mg/dL)", [new CdfSeries("multi", [3, 1, 2, 2])]));
        svg.Should().Contain(">1.0<").And.Contain(">0.0<");
        Count(svg, "<polyline").Should().Be(1);
    }

    [Fact]
    public void Markdown_TableIsAlignedAndEscaped()
    {
        var table = new ReportTable(["Arm", "MSLE", "sMAPE"],
            [["multi | split", ReportTable.Number(0.0216), ReportTable.Percent(0.0506)], ["single", ReportTable.Number(double.NaN), "15.14%"]])
        { Caption = "Table 7" };
        MarkdownTable.Write(table).Should().Be(
            "Table 7\n\n" +
            "| Arm | MSLE | sMAPE |\n" +
            "| --- | ---: | ---: |\n" +
            "| multi \\| split | 0.0216 | 5.06% |\n" +
            "| single | n/a | 15.14% |\n");
    }

    private static HtmlReport SampleReport() =>
        new HtmlReport("Split learning <demo> & baselines")
            .AddParagraph("Three hospitals, 7:2:1.")
            .AddChart(new LineChart("Training loss", "epoch", "BCE loss",
                [LineSeries.PerEpoch("vanilla", [0.69, 0.41, 0.30, 0.25]), LineSeries.PerEpoch("temporal", [0.69, 0.45, 0.33, 0.29])]))
            .AddChart(new GroupedBarChart("Accuracy per hospital", "accuracy", ["A (70%)", "B (20%)", "C (10%)"],
                [new BarSeries("multi-hospital", [0.91, 0.90, 0.92]), new BarSeries("single hospital", [0.88, 0.84, 0.80])]))
            .AddChart(new CdfChart("Per-sample error", "|LDL - predicted| (mg/dL)",
                [new CdfSeries("multi", [1, 2, 2, 5, 9]), new CdfSeries("Friedewald", [0.5, 1, 3, 12, 40])]))
            .AddTable(new ReportTable(["Arm", "Accuracy", "AUC"], [["multi", "91.0%", "0.962"], ["FedAvg", "88.2%", "0.941"]]))
            .AddConfiguration([new("dataset", "pneumoniamnist_28.npz"), new("seed", "42")]);

    private static int Count(string text, string what) => Regex.Count(text, Regex.Escape(what));

    [GeneratedRegex("<svg.*?</svg>", RegexOptions.Singleline)]
    private static partial Regex SvgPattern();
}

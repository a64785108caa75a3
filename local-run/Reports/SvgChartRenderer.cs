using System.Globalization;
using System.Net;
using System.Text;

namespace SplitFunctions.LocalRun.Reports;

/// <summary>Draws charts as inline SVG: axes with ticks, labelled titles, legends; no scripts, fonts or external references.</summary>
public static class SvgChartRenderer
{
    private const int Width = 720;
    private const int Height = 400;
    private const int Left = 70;
    private const int Right = 170;
    private const int Top = 40;
    private const int Bottom = 60;

    // Colour-blind-safe palette (Okabe-Ito).
    private static readonly string[] Colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"];

    public static string Render(LineChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var xs = chart.Series.SelectMany(s => s.X).Where(double.IsFinite).ToList();
        var x = AxisScale.Fit(xs, Left, Width - Right, integers: xs.All(v => v == Math.Floor(v)));
        var y = AxisScale.Fit(chart.Series.SelectMany(s => s.Y), Height - Bottom, Top);
        var svg = Begin(chart.Title);
        Axes(svg, x, y, chart.XLabel, chart.YLabel);
        for (var s = 0; s < chart.Series.Count; s++)
        {
            var series = chart.Series[s];
            var color = Colors[s % Colors.Length];
            var n = Math.Min(series.X.Count, series.Y.Count);
            foreach (var run in FiniteRuns(series, n))
            {
                svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"series\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"");
                svg.AppendJoin(' ', run.Select(i => Point(x.ToPixel(series.X[i]), y.ToPixel(series.Y[i]))));
                svg.Append("\"/>\n");
            }
            // Markers only while they stay readable.
            if (n <= 60)
                for (var i = 0; i < n; i++)
                    if (double.IsFinite(series.X[i]) && double.IsFinite(series.Y[i]))
                        svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(x.ToPixel(series.X[i]))}\" cy=\"{F(y.ToPixel(series.Y[i]))}\" r=\"2.5\" "
                            + $"fill=\"{color}\"/>\n");
        }
        Legend(svg, chart.Series.Select(s => s.Name).ToList(), line: true);
        return End(svg);
    }

    public static string Render(GroupedBarChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var y = AxisScale.Fit(chart.Series.SelectMany(s => s.Values), Height - Bottom, Top, includeZero: true);
        var svg = Begin(chart.Title);
        YAxis(svg, y, chart.YLabel);
        var plotWidth = Width - Left - Right;
        var groups = Math.Max(1, chart.Categories.Count);
        var groupWidth = plotWidth / (double)groups;
        var barWidth = groupWidth * 0.8 / Math.Max(1, chart.Series.Count);
        var zero = y.ToPixel(Math.Clamp(0, y.Min, y.Max));
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{F(Height - Bottom)}\" x2=\"{Width - Right}\" y2=\"{F(Height - Bottom)}\" "
            + $"stroke=\"#333\"/>\n");
        for (var g = 0; g < chart.Categories.Count; g++)
        {
            var groupLeft = Left + g * groupWidth + groupWidth * 0.1;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Left + (g + 0.5) * groupWidth)}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\" "
                + $"font-size=\"12\">{Text(chart.Categories[g])}</text>\n");
            for (var s = 0; s < chart.Series.Count; s++)
            {
                var values = chart.Series[s].Values;
                if (g >= values.Count || !double.IsFinite(values[g])) continue;
                var top = y.ToPixel(values[g]);
                var bx = groupLeft + s * barWidth;
                svg.Append(CultureInfo.InvariantCulture,
                    $"<rect class=\"bar\" x=\"{F(bx)}\" y=\"{F(Math.Min(top, zero))}\" width=\"{F(barWidth * 0.92)}\" height=\"{F(Math.Abs(zero - top))}\" "
                        + $"fill=\"{Colors[s % Colors.Length]}\"><title>{Text(chart.Series[s].Name)}, {Text(chart.Categories[g])}: "
                        + $"{Text(ValueLabel(values[g]))}</title></rect>\n");
                svg.Append(CultureInfo.InvariantCulture,
                    $"<text x=\"{F(bx + barWidth * 0.46)}\" y=\"{F(Math.Min(top, zero) - 4)}\" text-anchor=\"middle\" "
                        + $"font-size=\"10\">{Text(ValueLabel(values[g]))}</text>\n");
            }
        }
        Legend(svg, chart.Series.Select(s => s.Name).ToList(), line: false);
        return End(svg);
    }

    public static string Render(CdfChart chart)
    {
        ArgumentNullException.ThrowIfNull(chart);
        var sorted = chart.Series.Select(s => s.Samples.Where(double.IsFinite).Order().ToArray()).ToList();
        var x = AxisScale.Fit(sorted.SelectMany(v => v), Left, Width - Right, includeZero: true);
        var y = AxisScale.Fixed(0, 1, 0.2, Height - Bottom, Top);
        var svg = Begin(chart.Title);
        Axes(svg, x, y, chart.XLabel, "share of samples ≤ x");
        for (var s = 0; s < sorted.Count; s++)
        {
            var values = sorted[s];
            if (values.Length == 0) continue;
            // A step function: flat until each sample, then up by 1/n.
            var points = new List<string> { Point(x.ToPixel(values[0]), y.ToPixel(0)) };
            for (var i = 0; i < values.Length; i++)
            {
                if (i > 0) points.Add(Point(x.ToPixel(values[i]), y.ToPixel(i / (double)values.Length)));
                points.Add(Point(x.ToPixel(values[i]), y.ToPixel((i + 1) / (double)values.Length)));
            }
            points.Add(Point(x.ToPixel(x.Max), y.ToPixel(1)));
            svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"series\" fill=\"none\" stroke=\"{Colors[s % Colors.Length]}\" stroke-width=\"2\" "
                + $"points=\"");
            svg.AppendJoin(' ', points);
            svg.Append("\"/>\n");
        }
        Legend(svg, chart.Series.Select(s => s.Name).ToList(), line: true);
        return End(svg);
    }

    private static StringBuilder Begin(string title)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\" "
            + $"font-family=\"sans-serif\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"<title>{Text(title)}</title>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"0\" width=\"{Width}\" height=\"{Height}\" fill=\"#fff\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
            + $"font-weight=\"bold\">{Text(title)}</text>\n");
        return svg;
    }

    private static string End(StringBuilder svg) => svg.Append("</svg>").ToString();

    private static void Axes(StringBuilder svg, AxisScale x, AxisScale y, string xLabel, string yLabel)
    {
        YAxis(svg, y, yLabel);
        var baseY = Height - Bottom;
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{baseY}\" x2=\"{Width - Right}\" y2=\"{baseY}\" stroke=\"#333\"/>\n");
        foreach (var t in x.Ticks)
        {
            var px = F(x.ToPixel(t));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{px}\" y1=\"{baseY}\" x2=\"{px}\" y2=\"{baseY + 5}\" stroke=\"#333\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{px}\" y=\"{baseY + 18}\" text-anchor=\"middle\" "
                + $"font-size=\"11\">{Text(x.Label(t))}</text>\n");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 15}\" text-anchor=\"middle\" "
            + $"font-size=\"12\">{Text(xLabel)}</text>\n");
    }

    private static void YAxis(StringBuilder svg, AxisScale y, string yLabel)
    {
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Height - Bottom}\" stroke=\"#333\"/>\n");
        foreach (var t in y.Ticks)
        {
            var py = F(y.ToPixel(t));
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left - 5}\" y1=\"{py}\" x2=\"{Width - Right}\" y2=\"{py}\" stroke=\"#ddd\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 8}\" y=\"{py}\" dy=\"0.35em\" text-anchor=\"end\" "
                + $"font-size=\"11\">{Text(y.Label(t))}</text>\n");
        }
        var midY = (Top + Height - Bottom) / 2;
        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16 {midY}) rotate(-90)\" text-anchor=\"middle\" "
            + $"font-size=\"12\">{Text(yLabel)}</text>\n");
    }

    private static void Legend(StringBuilder svg, List<string> names, bool line)
    {
        var x0 = Width - Right + 15;
        for (var i = 0; i < names.Count; i++)
        {
            var yy = Top + 10 + i * 20;
            var color = Colors[i % Colors.Length];
            if (line)
                svg.Append(CultureInfo.InvariantCulture, $"<line class=\"legend\" x1=\"{x0}\" y1=\"{yy}\" x2=\"{x0 + 20}\" y2=\"{yy}\" stroke=\"{color}\" "
                    + $"stroke-width=\"3\"/>\n");
            else
                svg.Append(CultureInfo.InvariantCulture, $"<rect class=\"legend\" x=\"{x0 + 4}\" y=\"{yy - 6}\" width=\"12\" height=\"12\" "
                    + $"fill=\"{color}\"/>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0 + 26}\" y=\"{yy}\" dy=\"0.35em\" font-size=\"12\">{Text(names[i])}</text>\n");
        }
    }

    private static IEnumerable<List<int>> FiniteRuns(LineSeries series, int n)
    {
        var run = new List<int>();
        for (var i = 0; i < n; i++)
        {
            if (double.IsFinite(series.X[i]) && double.IsFinite(series.Y[i])) run.Add(i);
            else if (run.Count > 0)
            {
                yield return run;
                run = [];
            }
        }
        if (run.Count > 0) yield return run;
    }

    private static string ValueLabel(double v) => Math.Abs(v) >= 100 ? v.ToString("0.#", CultureInfo.InvariantCulture)
        : v.ToString("0.###", CultureInfo.InvariantCulture);

    private static string Point(double x, double y) => F(x) + "," + F(y);

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Text(string text) => WebUtility.HtmlEncode(text);
}

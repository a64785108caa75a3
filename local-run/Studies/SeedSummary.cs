using System.Globalization;
using System.Text;
using System.Text.Json;
using SplitFunctions.LocalRun.Reports;

namespace SplitFunctions.LocalRun.Studies;

/// <summary>One arm's test scores over the seeds that finished it: mean and sample standard deviation.</summary>
public sealed record SeedArmSummary(string Arm, IReadOnlyList<long> Seeds, IReadOnlyList<double> Accuracy, IReadOnlyList<double> RocAuc,
    IReadOnlyList<double> Msle, IReadOnlyList<int> SelectedEpochs, IReadOnlyList<double> Seconds)
{
    public static (double Mean, double Sd) MeanSd(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return (double.NaN, double.NaN);
        var mean = values.Average();
        var sd = values.Count < 2 ? double.NaN : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return (mean, sd);
    }
}

/// <summary>
/// `experiments --seeds`: each seed is a study of its own in seed-&lt;n&gt;/ (its own split of the training images, initial
/// weights and batch order; the listed validation and test images stay fixed); summary.json and summary.md put every arm's
/// test scores side by side as mean +- standard deviation over the seeds, from every seed-&lt;n&gt;/arms/ under the folder (so
/// arms finished by separate runs, e.g. the cheap arms for more seeds than the split-learning ones, are all counted).
/// </summary>
public static class SeedSummary
{
    public static IReadOnlyList<SeedArmSummary> Write(string folder)
    {
        var arms = new Dictionary<string, List<(long Seed, JsonElement Arm)>>(StringComparer.Ordinal);
        var order = new List<string>();
        var seeds = Directory.EnumerateDirectories(folder, "seed-*")
            .Select(d => long.TryParse(Path.GetFileName(d)["seed-".Length..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : (long?)null)
            .OfType<long>().Order().ToList();
        var armOrder = ExperimentsCommand.AllArms;
        foreach (var seed in seeds)
        {
            var armsFolder = Path.Combine(folder, SeedFolder(seed), "arms");
            if (!Directory.Exists(armsFolder)) continue;
            var files = Directory.EnumerateFiles(armsFolder, "*.json")
                .OrderBy(f => Array.IndexOf(armOrder, Path.GetFileNameWithoutExtension(f)) is var i and >= 0 ? i : int.MaxValue).ToList();
            foreach (var file in files)
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(file));
                foreach (var arm in document.RootElement.EnumerateArray()) Add(seed, arm);
            }
        }
        void Add(long seed, JsonElement arm)
        {
            var name = arm.GetProperty("arm").GetString()!;
            if (!arms.TryGetValue(name, out var list))
            {
                arms[name] = list = [];
                order.Add(name);
            }
            list.Add((seed, arm.Clone()));
        }
        static double? Score(JsonElement arm, string kind, string metric) =>
            arm.GetProperty("test").TryGetProperty(kind, out var scores) && scores.ValueKind == JsonValueKind.Object ? scores.GetProperty(metric).GetDouble()
                : null;
        var summaries = order.Select(name =>
        {
            var runs = arms[name];
            return new SeedArmSummary(name, [.. runs.Select(r => r.Seed)],
                [.. runs.Select(r => Score(r.Arm, "classification", "accuracy")).OfType<double>()],
                [.. runs.Select(r => Score(r.Arm, "classification", "rocAuc")).OfType<double>()],
                [.. runs.Select(r => Score(r.Arm, "regression", "msle")).OfType<double>()],
                [.. runs.Select(r => r.Arm.GetProperty("selectedEpoch").GetInt32())],
                [.. runs.Select(r => r.Arm.GetProperty("seconds").GetDouble())]);
        }).ToList();

        File.WriteAllText(Path.Combine(folder, "summary.json"), JsonSerializer.Serialize(new { seeds, arms = summaries }, Json));
        File.WriteAllText(Path.Combine(folder, "summary.md"), Markdown(summaries, seeds));
        return summaries;
    }

    public static string SeedFolder(long seed) => string.Create(CultureInfo.InvariantCulture, $"seed-{seed}");

    private static string Markdown(IReadOnlyList<SeedArmSummary> arms, IReadOnlyList<long> seeds)
    {
        var inv = CultureInfo.InvariantCulture;
        string Cell(IReadOnlyList<double> values, Func<double, string> format)
        {
            var (mean, sd) = SeedArmSummary.MeanSd(values);
            return values.Count == 0 ? "-" : values.Count == 1 ? format(mean) : $"{format(mean)} +- {format(sd)}";
        }
        var classification = arms.Any(a => a.Accuracy.Count > 0);
        List<string> headers = classification
            ? ["arm", "seeds", "test accuracy (mean +- sd)", "test AUC (mean +- sd)", "epochs chosen on validation", "minutes per seed"]
            : ["arm", "seeds", "test MSLE (mean +- sd)", "epochs chosen on validation", "minutes per seed"];
        var rows = arms.Select(a =>
        {
            List<string> row = [a.Arm, string.Join(", ", a.Seeds)];
            if (classification)
            {
                row.Add(Cell(a.Accuracy, v => (v * 100).ToString("F1", inv) + "%"));
                row.Add(Cell(a.RocAuc, v => v.ToString("F3", inv)));
            }
            else
            {
                row.Add(Cell(a.Msle, v => v.ToString("F4", inv)));
            }
            row.Add(string.Join(", ", a.SelectedEpochs));
            row.Add((a.Seconds.Average() / 60).ToString("F1", inv));
            return (IReadOnlyList<string>)row;
        }).ToList();
        var text = new StringBuilder();
        text.Append(inv, $"Test scores over seeds {string.Join(", ", seeds)} (sample standard deviation; each seed's study is in its seed-<n>/ folder).")
            .Append("\n\n");
        text.Append(MarkdownTable.Write(new ReportTable(headers, rows)));
        return text.ToString();
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
}

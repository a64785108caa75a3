using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SplitFunctions.Bench;

/// <summary>
/// artifacts/bench/results.json: each benchmark merges its own keys and keeps the others; results.md beside it is
/// rewritten from the whole file, one row per key (figure, target, threads, cores, when).
/// </summary>
public static class BenchResults
{
    public static string DefaultPath => Path.Combine("artifacts", "bench", "results.json");

    public static void Merge(string key, JsonObject value, string? path = null)
    {
        path ??= DefaultPath;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        JsonObject root = File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonObject existing
            ? existing
            : new JsonObject();
        value["measured_at"] = DateTimeOffset.UtcNow.ToString("O");
        value["machine_cores"] = Environment.ProcessorCount;
        root[key] = value;
        var temp = path + ".tmp";
        File.WriteAllText(temp, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, path, overwrite: true);
        File.WriteAllText(Path.ChangeExtension(path, ".md"), Table(root));
    }

    /// <summary>The markdown table of every figure in the results file.</summary>
    public static string Table(JsonObject root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var text = new StringBuilder("| key | figure | target | threads | cores | measured at |\n| --- | ---: | --- | ---: | ---: | --- |\n");
        foreach (var (key, node) in root)
        {
            if (node is not JsonObject value) continue;
            var figure = Number(value["ratio"]) ?? Number(value["fraction"]) ?? "-";
            if (value["fraction_without_prefetch"] is { } off) figure += $" (without prefetch {Number(off)})";
            text.Append(CultureInfo.InvariantCulture,
                $"| `{key}` | {figure} | {value["target"]?.ToString() ?? "-"} | {value["threads"]?.ToString() ?? "-"} | {value["machine_cores"]} | "
                    + $"{value["measured_at"]} |\n");
        }
        return text.ToString();
    }

    private static string? Number(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString("0.###", CultureInfo.InvariantCulture) : null;
}

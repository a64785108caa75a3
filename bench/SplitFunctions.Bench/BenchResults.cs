using System.Text.Json;
using System.Text.Json.Nodes;

namespace SplitFunctions.Bench;

/// <summary>artifacts/bench/results.json: each benchmark merges its own keys and keeps the others.</summary>
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
    }
}

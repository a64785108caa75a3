using System.Globalization;

namespace SplitFunctions.Bench;

/// <summary>"--name value" options of a benchmark, with defaults.</summary>
public sealed class BenchOptions
{
    private readonly Dictionary<string, string> values = new(StringComparer.OrdinalIgnoreCase);

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
                throw new ArgumentException($"unexpected argument '{args[i]}': options look like --steps 10");
            var name = args[i][2..];
            if (i + 1 >= args.Length) throw new ArgumentException($"option --{name} needs a value");
            options.values[name] = args[++i];
        }
        return options;
    }

    public string Get(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;

    public int GetInt(string name, int fallback) =>
        values.TryGetValue(name, out var v)
            ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException($"--{name} must be a positive integer, got '{v}'")
            : fallback;
}

/// <summary>Where the repository and Debian's PyTorch interpreter are.</summary>
public static class RepoPaths
{
    // Debian's own interpreter has python3-torch; the python3 first on PATH may not.
    public const string DebianPython = "/usr/bin/python3";

    public static string Root { get; } = Find();

    private static string Find()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "SplitFunctions.sln"))) return dir.FullName;
        throw new InvalidOperationException("run the benchmarks from inside the SplitFunctions repository");
    }
}

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
            // A flag (--smoke) has no value: the next argument is another option or there is none.
            options.values[name] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
        }
        return options;
    }

    public string Get(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>A flag such as --smoke (or --smoke true / --smoke false).</summary>
    public bool GetFlag(string name) =>
        values.TryGetValue(name, out var v) && (bool.TryParse(v, out var b) ? b : throw new ArgumentException($"--{name} is a flag (true/false), got '{v}'"));

    /// <summary>--smoke: tiny sizes so a test can run the benchmark in about a second; figures mean nothing then.</summary>
    public bool Smoke => GetFlag("smoke");

    /// <summary>--results PATH: where to merge the result keys (default artifacts/bench/results.json).</summary>
    public string ResultsPath => Get("results", BenchResults.DefaultPath);

    /// <summary>An integer option with a normal default and a smoke-test default.</summary>
    public int GetInt(string name, int fallback, int smokeFallback) => GetInt(name, Smoke ? smokeFallback : fallback);

    public double GetDouble(string name, double fallback) =>
        values.TryGetValue(name, out var v)
            ? double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d >= 0 ? d
                : throw new ArgumentException($"--{name} must be a non-negative number, got '{v}'")
            : fallback;

    public int GetInt(string name, int fallback) =>
        values.TryGetValue(name, out var v)
            ? int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n
                : throw new ArgumentException($"--{name} must be a positive integer, got '{v}'")
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

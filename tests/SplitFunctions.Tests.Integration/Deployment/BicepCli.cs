using System.Diagnostics;
using System.Text.Json.Nodes;

namespace SplitFunctions.Tests.Deployment;

/// <summary>
/// The Bicep CLI that scripts/setup.sh restores from NuGet (build/bicep/BicepCli.csproj), and the templates compiled
/// with it, once per test run. The tests compile the templates themselves, so a test never reads a stale
/// artifacts/bicep/main.json. Any error or warning of the compiler fails the compilation, as scripts/bicep.sh does;
/// a missing CLI fails with the command that restores it, never a skipped test.
/// </summary>
internal static class BicepCli
{
    /// <summary>The version build/bicep/BicepCli.csproj downloads (a test keeps the two in step).</summary>
    public const string Version = "0.49.2";

    /// <summary>Environment variables main.bicepparam reads at compile time; unset, so its defaults are what is checked.</summary>
    private static readonly string[] ParameterFileVariables = ["SPLITFN_NAME_PREFIX", "SPLITFN_DEPLOY_SERVER", "SPLITFN_IMAGE_TAG"];

    private static readonly Lazy<string> Cli = new(Find);
    private static readonly Lazy<JsonObject> MainTemplate = new(() => ParseObject(Run("build", "main.bicep", "--stdout"), "bicep build main.bicep"));
    private static readonly Lazy<JsonObject> Parameters = new(BuildParameters);

    public static string InfraFolder => Path.Combine(RepoRoot.Path, "infra-bicep");

    /// <summary>infra-bicep/main.bicep compiled to ARM JSON (every module inlined as a nested deployment). Do not modify.</summary>
    public static JsonObject Main => MainTemplate.Value;

    /// <summary>The `parameters` of infra-bicep/main.bicepparam compiled (name to value), with its environment variables unset.</summary>
    public static IReadOnlyDictionary<string, JsonNode?> ParameterFile => Parameters.Value
        .ToDictionary(p => p.Key, p => p.Value!["value"], StringComparer.Ordinal);

    /// <summary>The CLI's path under NuGet's global packages folder.</summary>
    public static string CliPath => Cli.Value;

    private static string Find()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
        {
            var (code, stdout, _) = Execute("dotnet", ["nuget", "locals", "global-packages", "--list"], RepoRoot.Path);
            var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("global-packages:", StringComparison.Ordinal));
            if (code != 0 || line is null)
                throw new InvalidOperationException("Cannot find NuGet's global packages folder (`dotnet nuget locals global-packages --list` failed); set "
                    + "NUGET_PACKAGES.");
            packages = line["global-packages:".Length..].Trim();
        }
        var cli = Path.Combine(packages, "azure.bicep.commandline.linux-x64", Version, "tools", "bicep");
        if (!File.Exists(cli))
            throw new InvalidOperationException(
                $"The Bicep CLI {Version} is not restored (no azure.bicep.commandline.linux-x64/{Version}/tools/bicep in NuGet's global packages folder): run "
                    + $"scripts/setup.sh (or scripts/bicep.sh), which restores build/bicep/BicepCli.csproj.");
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(cli);
            if ((mode & UnixFileMode.UserExecute) == 0)
                File.SetUnixFileMode(cli, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        return cli;
    }

    private static JsonObject BuildParameters()
    {
        var output = ParseObject(Run("build-params", "main.bicepparam", "--stdout"), "bicep build-params main.bicepparam");
        var parameters = ParseObject(output["parametersJson"]!.GetValue<string>(), "main.bicepparam's parametersJson");
        return parameters["parameters"]!.AsObject();
    }

    private static JsonObject ParseObject(string json, string what) =>
        JsonNode.Parse(json) as JsonObject ?? throw new InvalidOperationException($"{what} did not give a JSON object");

    /// <summary>Runs the CLI in infra-bicep/; any error or warning it prints fails, with its lines.</summary>
    private static string Run(params string[] args)
    {
        var (code, stdout, stderr) = Execute(Cli.Value, args, InfraFolder, ParameterFileVariables);
        var diagnostics = stderr.Split('\n')
            .Where(l => l.Contains(" : Warning ", StringComparison.Ordinal) || l.Contains(" : Error ", StringComparison.Ordinal)).ToList();
        if (code != 0 || diagnostics.Count > 0)
            throw new InvalidOperationException($"bicep {string.Join(' ', args)} failed (exit code {code}; scripts/bicep.sh fails the same "
                + $"way):\n{(diagnostics.Count > 0 ? string.Join('\n', diagnostics) : stderr)}");
        return stdout;
    }

    private static (int Code, string Stdout, string Stderr) Execute(string file, IEnumerable<string> args, string directory, IEnumerable<string>? unset = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var name in unset ?? []) start.Environment.Remove(name);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran longer than 3 minutes");
        }
        return (process.ExitCode, stdout, stderr.GetAwaiter().GetResult());
    }
}

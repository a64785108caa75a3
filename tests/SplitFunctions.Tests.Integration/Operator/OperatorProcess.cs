using System.Diagnostics;
using System.Text;
using SplitFunctions.Core.Contract;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Operator;

/// <summary>What one process printed and returned.</summary>
internal sealed record ToolRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>The built `splitfn-operator` and `splitfn-agent` run as real processes, configured through the function's settings.</summary>
internal static class OperatorProcess
{
    public static string OperatorDll => Path.Combine(RepoRoot.Path, "operator", "bin", "Release", "net10.0", "splitfn-operator.dll");

    public static string AgentDll => Path.Combine(RepoRoot.Path, "client-agent", "bin", "Release", "net10.0", "splitfn-agent.dll");

    /// <summary>`splitfn-operator args` with AzureWebJobsStorage and SplitFunctions__KeyDirectory set (null leaves them unset).</summary>
    public static Task<ToolRun> OperatorAsync(string? connectionString, string? keyDirectory, string workingDirectory, params string[] args)
    {
        var environment = new Dictionary<string, string?>
        {
            [FunctionSettings.Storage] = connectionString,
            [FunctionSettings.KeyDirectory] = keyDirectory,
            [FunctionSettings.KeyVaultUri] = null,
            [FunctionSettings.StorageAccountName] = null,
        };
        return RunAsync(OperatorDll, workingDirectory, environment, args);
    }

    public static Task<ToolRun> AgentAsync(string workingDirectory, params string[] args) =>
        RunAsync(AgentDll, workingDirectory, new Dictionary<string, string?> { ["SPLITFN_AGENT_CONFIG"] = null }, args);

    private static async Task<ToolRun> RunAsync(string dll, string workingDirectory, IReadOnlyDictionary<string, string?> environment, string[] args)
    {
        File.Exists(dll).Should().BeTrue($"{dll} must be built first (dotnet build SplitFunctions.sln -c Release)");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment)
        {
            if (v is null) info.Environment.Remove(k);
            else info.Environment[k] = v;
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new ToolRun(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Splits a printed shell command into arguments (single quotes as <c>ShellQuote</c> writes them).</summary>
    public static List<string> SplitCommand(string line)
    {
        var args = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        var any = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '\'') quoted = false;
                else current.Append(c);
            }
            else if (c == '\'')
            {
                quoted = true;
                any = true;
            }
            else if (c == '\\' && i + 1 < line.Length)
            {
                current.Append(line[++i]);
            }
            else if (char.IsWhiteSpace(c))
            {
                if (current.Length > 0 || any) args.Add(current.ToString());
                current.Clear();
                any = false;
            }
            else
            {
                current.Append(c);
            }
        }
        if (current.Length > 0 || any) args.Add(current.ToString());
        return args;
    }
}

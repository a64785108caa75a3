using System.Diagnostics;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>`splitfn-local` as a user runs it: a real process from the built solution, killed with its children past a deadline.</summary>
internal static class LocalRunProcess
{
    public static async Task<(int Code, string Log)> RunAsync(string[] arguments, TimeSpan deadline, string? workingDirectory = null)
    {
        var dll = Path.Combine(RepoRoot.Path, "local-run", "bin", "Release", "net10.0", "splitfn-local.dll");
        File.Exists(dll).Should().BeTrue($"{dll} must be built (scripts/test.sh builds the solution)");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null) info.WorkingDirectory = workingDirectory;
        info.ArgumentList.Add(dll);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"splitfn-local {arguments.FirstOrDefault()} did not finish within {deadline.TotalMinutes:F0} minutes: "
                + $"" + await stdout + await stderr);
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}

using System.Diagnostics;
using System.Text;
using SplitFunctions.Core.Contract;
using SplitFunctions.Tests.Infrastructure;

namespace SplitFunctions.Tests.Function;

/// <summary>The real function executable as a child process in drain mode, with its output captured for diagnostics.</summary>
internal sealed class FunctionProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();

    private FunctionProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string Dll => System.IO.Path.Combine(RepoRoot.Path, "functions", "bin", "Release", "net10.0", "SplitFunctions.Functions.dll");

    public string Output { get { lock (output) return output.ToString(); } }

    public bool HasExited => process.HasExited;

    public static FunctionProcess Start(RunHarness run, string mode, string instanceId, IDictionary<string, string>? extra = null)
    {
        File.Exists(Dll).Should().BeTrue($"the function must be built first ({Dll}); run scripts/test.sh");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Dll);
        info.ArgumentList.Add(mode);
        info.ArgumentList.Add("--instance-id");
        info.ArgumentList.Add(instanceId);
        info.Environment[FunctionSettings.Storage] = run.Azurite.ConnectionString;
        info.Environment[FunctionSettings.KeyDirectory] = run.KeyFolder;
        info.Environment[FunctionSettings.Device] = "cpu";
        info.Environment[FunctionSettings.Threads] = "1";
        info.Environment[FunctionSettings.VisibilityTimeoutSeconds] = "6";
        foreach (var (k, v) in extra ?? new Dictionary<string, string>()) info.Environment[k] = v;
        return new FunctionProcess(Process.Start(info)!);
    }

    /// <summary>Waits for the process to end by itself; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return process.ExitCode;
    }

    /// <summary>
    /// Waits until the log holds <paramref name="text"/> (or <paramref name="timeout"/> passes) and returns the log: a line
    /// about a message is written after its reply is sent, so a test that has the reply may not have the line yet.
    /// </summary>
    public async Task<string> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text, StringComparison.Ordinal) && DateTime.UtcNow < deadline && !process.HasExited) await Task.Delay(100);
        return Output;
    }

    /// <summary>Kills the process at once (no shutdown, no checkpoint), as a crash would.</summary>
    public void Kill()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    /// <summary>Asks the host to stop (SIGTERM) and waits, so it checkpoints and releases its leases.</summary>
    public async Task StopAsync()
    {
        if (process.HasExited) return;
        using (var term = Process.Start("kill",
            ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (OperationCanceledException)
        {
            Kill();
        }
        process.Dispose();
    }
}

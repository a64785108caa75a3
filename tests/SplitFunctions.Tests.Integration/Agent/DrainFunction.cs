using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;
using SplitFunctions.Tests.Function;

namespace SplitFunctions.Tests.Agent;

/// <summary>The real function (`drain` mode) as a child process reading the agents' keys, plus a look at its durable run state once it has stopped.</summary>
internal sealed class DrainFunction : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DrainFunction(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    public static DrainFunction Start(string connectionString, string keyDirectory)
    {
        File.Exists(FunctionProcess.Dll).Should().BeTrue($"the function must be built first ({FunctionProcess.Dll})");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { FunctionProcess.Dll, "drain", "--instance-id", "agent-tests" }) info.ArgumentList.Add(a);
        info.Environment[FunctionSettings.Storage] = connectionString;
        info.Environment[FunctionSettings.KeyDirectory] = keyDirectory;
        info.Environment[FunctionSettings.Device] = "cpu";
        info.Environment[FunctionSettings.Threads] = "1";
        info.Environment[FunctionSettings.VisibilityTimeoutSeconds] = "10";
        return new DrainFunction(Process.Start(info)!);
    }

    /// <summary>SIGKILL: the function dies mid-work, without a checkpoint or releasing its lease.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM and wait: the function checkpoints and releases its run lease.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        using (var term = Process.Start("kill",
            ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>The run's state as the function recorded it (checkpoint + journal): per-hospital watermark and steps applied.</summary>
    public static async Task<(long Watermark, long BatchesApplied)> ReadRunStateAsync(StorageConnection storage, string keyDirectory, string runId,
        string hospital)
    {
        var store = new RunStore(storage.GetBlobContainerClient(StorageNames.RunsContainer), 3);
        await using var runs = new LeasedRuns(store, new ServerFrameStore(storage, new LocalKeyStore(keyDirectory)), TorchSharp.torch.CPU,
            "agent-tests-reader", NullLogger<LeasedRuns>.Instance);
        var leased = await runs.OpenAsync(runId, CancellationToken.None) ?? throw new InvalidOperationException("the run is still leased by the function");
        return (leased.State.Watermarks[hospital], leased.State.BatchesApplied);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.Dispose();
    }
}

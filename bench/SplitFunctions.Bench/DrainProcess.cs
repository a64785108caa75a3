using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SplitFunctions.Core.Contract;

namespace SplitFunctions.Bench;

/// <summary>
/// The function as its own process (`SplitFunctions.Functions drain`, as a Container Apps job runs it), for benchmarks that
/// must see what one function instance costs (its resident memory) or run several instances against one queue. What
/// it did is read back from its log: the steps it applied with their compute time, the runs it opened, the messages it
/// deferred because another instance held their run.
/// </summary>
public sealed partial class DrainProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly List<string> lines = [];

    private DrainProcess(Process process, string instanceId)
    {
        this.process = process;
        InstanceId = instanceId;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The built function next to the repository's sources (`dotnet build bench/SplitFunctions.Bench -c Release` builds it).</summary>
    public static string Dll => Path.Combine(RepoPaths.Root, "functions", "bin", "Release", "net10.0", "SplitFunctions.Functions.dll");

    public string InstanceId { get; }

    public static DrainProcess Start(SplitRig rig, string instanceId, int threads)
    {
        ArgumentNullException.ThrowIfNull(rig);
        if (!File.Exists(Dll)) throw new FileNotFoundException($"build the function first: dotnet build functions -c Release ({Dll} is missing)");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Dll, "drain", "--instance-id", instanceId }) info.ArgumentList.Add(a);
        info.Environment[FunctionSettings.Storage] = rig.FunctionConnectionString;
        info.Environment[FunctionSettings.KeyDirectory] = rig.KeyFolder;
        info.Environment[FunctionSettings.Device] = "cpu";
        info.Environment[FunctionSettings.Threads] = threads.ToString(CultureInfo.InvariantCulture);
        return new DrainProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start the function process"), instanceId);
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (lines) lines.Add(line);
    }

    public IReadOnlyList<string> Log
    {
        get
        {
            lock (lines) return [.. lines];
        }
    }

    /// <summary>Vanilla steps this instance applied, by (hospital, sequence), with the compute time it logged for each.</summary>
    public IReadOnlyDictionary<(string Hospital, long Sequence), double> AppliedSteps()
    {
        var steps = new Dictionary<(string, long), double>();
        foreach (var line in Log)
        {
            var m = AppliedLine().Match(line);
            if (m.Success)
            {
                steps[(m.Groups["h"].Value, long.Parse(m.Groups["seq"].Value, CultureInfo.InvariantCulture))] =
                    double.Parse(m.Groups["ms"].Value, CultureInfo.InvariantCulture);
            }
        }
        return steps;
    }

    /// <summary>Runs this instance opened (took the lease of and loaded).</summary>
    public IReadOnlySet<string> OpenedRuns() => Log.Select(l => OpenedLine().Match(l)).Where(m => m.Success).Select(m => m.Groups["run"].Value)
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>Messages this instance put back because another instance held their run.</summary>
    public int Deferred() => Log.Count(l => l.Contains("deferred: run", StringComparison.Ordinal));

    /// <summary>Resident and peak resident memory of the process (VmRSS, VmHWM from /proc), in bytes; NaN where /proc is absent.</summary>
    public (double Rss, double Peak) Memory()
    {
        var status = $"/proc/{process.Id}/status";
        if (!File.Exists(status)) return (double.NaN, double.NaN);
        double Field(string name) => File.ReadLines(status).Where(l => l.StartsWith(name, StringComparison.Ordinal))
            .Select(l => double.Parse(l[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024).FirstOrDefault(double.NaN);
        try
        {
            return (Field("VmRSS:"), Field("VmHWM:"));
        }
        catch (IOException)
        {
            return (double.NaN, double.NaN); // The process is gone.
        }
    }

    /// <summary>SIGTERM and wait: the function checkpoints its runs and releases their leases, as on a scale-in.</summary>
    public async Task StopAsync()
    {
        if (process.HasExited) return;
        using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync()
            .ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"function instance {InstanceId} did not stop within 60 s of SIGTERM");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Killed instead; the benchmark's figures are already taken.
        }
        process.Dispose();
    }

    // VanillaSteps' outcome as the drain loop logs it: "...: Completed: <hospital>#<seq>: step N, loss X, compute Y ms".
    [GeneratedRegex(@"Completed: (?<h>[^#\s]+)#(?<seq>\d+): step \d+, loss [^,]+, compute (?<ms>[0-9.]+) ms")]
    private static partial Regex AppliedLine();

    [GeneratedRegex(@"run (?<run>\S+): opened \(")]
    private static partial Regex OpenedLine();
}

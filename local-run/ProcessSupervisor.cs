using System.Collections.Concurrent;
using System.Diagnostics;

namespace SplitFunctions.LocalRun;

/// <summary>
/// Starts the function and the hospital agents as real child processes, tees each one's output into its own log file
/// (and, prefixed, to the console when asked), and kills every process it started on Ctrl-C, on exit, or on dispose.
/// </summary>
public sealed class ProcessSupervisor : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, Process> running = new();
    private readonly string logFolder;
    private readonly Lock consoleLock = new();

    public ProcessSupervisor(string logFolder)
    {
        this.logFolder = logFolder;
        Directory.CreateDirectory(logFolder);
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            Cancelled.Cancel();
            KillAll();
        };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
    }

    /// <summary>Signalled on Ctrl-C.</summary>
    public CancellationTokenSource Cancelled { get; } = new();

    /// <summary>Starts `dotnet &lt;dll&gt; args` with extra environment; output goes to `&lt;name&gt;.log`.</summary>
    public Process Start(string name, string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, bool echo = false,
        string? workingDirectory = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? ""
        };
        info.ArgumentList.Add(dll);
        foreach (var a in arguments) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {name}");
        running[process.Id] = process;
        var log = new StreamWriter(Path.Combine(logFolder, name + ".log"), append: true) { AutoFlush = true };
        var gate = new Lock();
        void Write(string? line)
        {
            if (line is null) return;
            lock (gate) log.WriteLine(line);
            if (echo)
            {
                lock (consoleLock) Console.WriteLine($"[{name}] {line}");
            }
        }
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) =>
        {
            running.TryRemove(process.Id, out _);
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs a process to completion and returns its exit code.</summary>
    public async Task<int> RunAsync(string name, string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null,
        bool echo = false,
        string? workingDirectory = null, CancellationToken cancellationToken = default)
    {
        using var process = Start(name, dll, arguments, environment, echo, workingDirectory);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }
        return process.ExitCode;
    }

    public static void Kill(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private void KillAll()
    {
        foreach (var process in running.Values) Kill(process);
    }

    public ValueTask DisposeAsync()
    {
        KillAll();
        Cancelled.Dispose();
        return ValueTask.CompletedTask;
    }
}

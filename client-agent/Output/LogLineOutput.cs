using System.Globalization;

namespace SplitFunctions.ClientAgent.Output;

/// <summary>
/// Non-interactive runs (systemd, Task Scheduler, CI): one key=value line per event and one per <c>logEvery</c> steps,
/// easy to grep and to parse by a log collector.
/// </summary>
public sealed class LogLineOutput(TextWriter output, TextWriter error, int logEvery) : IAgentOutput
{
    private readonly object _gate = new();

    public void Info(string message) => Write(output, "info", message);

    public void Warn(string message) => Write(error, "warn", message);

    public async Task<T> TrackAsync<T>(string title, long total, long done, Func<IProgressTracker, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Info(string.Create(CultureInfo.InvariantCulture, $"{title}: {done}/{total} steps done"));
        return await work(new Tracker(this, Math.Max(1, logEvery))).ConfigureAwait(false);
    }

    private void Write(TextWriter writer, string level, string message)
    {
        lock (_gate)
        {
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {message}"));
            writer.Flush();
        }
    }

    private sealed class Tracker(LogLineOutput owner, int every) : IProgressTracker
    {
        private long _reports;

        public void Report(StepProgress p)
        {
            // The last batch of an epoch is always logged, so every epoch's end is visible.
            if (++_reports % every != 0 && p.Batch != p.Batches) return;
            var loss = p.Loss is { } l ? l.ToString("F4", CultureInfo.InvariantCulture) : "-";
            owner.Info(string.Create(CultureInfo.InvariantCulture,
                $"{p.Phase} epoch={p.Epoch}/{p.Epochs} batch={p.Batch}/{p.Batches} loss={loss} samples_per_s={p.SamplesPerSecond:F1} seq={p.Sequence}"));
        }
    }
}

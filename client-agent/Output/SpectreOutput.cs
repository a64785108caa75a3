using System.Globalization;
using Spectre.Console;

namespace SplitFunctions.ClientAgent.Output;

/// <summary>Interactive runs: a Spectre.Console progress bar with the epoch, the latest loss and throughput.</summary>
public sealed class SpectreOutput : IAgentOutput
{
    public void Info(string message) => AnsiConsole.MarkupLine(Markup.Escape(message));

    public void Warn(string message) => AnsiConsole.MarkupLine("[yellow]" + Markup.Escape(message) + "[/]");

    public Task<T> TrackAsync<T>(string title, long total, long done, Func<IProgressTracker, Task<T>> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        return AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(),
                new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(title), maxValue: Math.Max(1, total));
                task.Value = done;
                return await work(new Tracker(task)).ConfigureAwait(false);
            });
    }

    private sealed class Tracker(ProgressTask task) : IProgressTracker
    {
        public void Report(StepProgress p)
        {
            task.Increment(1);
            var loss = p.Loss is { } l ? l.ToString("F4", CultureInfo.InvariantCulture) : "-";
            task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{p.Phase} epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches}  loss {loss}  {p.SamplesPerSecond:F0} samples/s"));
        }
    }
}

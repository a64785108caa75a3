using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using SplitFunctions.Core.CommandLine;
using SplitFunctions.Core.Consortium;

namespace SplitFunctions.Operator;

/// <summary>The tables of `run status` and `run watch`: one row per hospital, then the server.</summary>
internal static class StatusView
{
    public static IRenderable Render(RunStatus status)
    {
        var m = status.Manifest;
        var title = $"run {Printable.Escape(m.RunId)}: {Printable.Escape(m.Model)} ({m.Mode}), {m.Epochs} epochs, batch {m.BatchSize}";
        var hospitals = new Table().Title(Markup.Escape(title)).Border(TableBorder.Rounded)
            .AddColumns("hospital", "steps applied", "last seq", "epoch", "loss", "validation", "last seen", "replies waiting");
        foreach (var h in status.Hospitals)
        {
            hospitals.AddRow(
                Markup.Escape(Printable.Escape(h.Revoked ? h.HospitalId + " (revoked)" : h.HospitalId)),
                Number(h.StepsApplied),
                h.LastSequence is { } seq ? Number(seq) : "-",
                h.Epoch is { } e ? string.Create(CultureInfo.InvariantCulture, $"{e}/{m.Epochs}") : "-",
                h.Loss is { } l && double.IsFinite(l) ? l.ToString("F4", CultureInfo.InvariantCulture) : "-",
                h.ValidationValue is { } v ? Markup.Escape(Printable.Escape(string.Create(CultureInfo.InvariantCulture, $"{h.ValidationMetric} {v:F4}"))) : "-",
                h.LastSeen is { } t ? Ago(status.ReadAt - t) : "never",
                Number(h.RepliesWaiting));
        }
        var s = status.Server;
        var server = new Table().Title("server").Border(TableBorder.Rounded)
            .AddColumns("lease", "instance", "checkpoint", "step", "batches", "epochs", "features queue", "poisoned");
        server.AddRow(
            s.LeaseState,
            Markup.Escape(Printable.Escape(s.Instance ?? "-")),
            s.CheckpointNumber is { } c ? Number(c) : "none",
            s.CheckpointStep is { } st ? string.Create(CultureInfo.InvariantCulture, $"{st} (+{s.JournalTail} "
                + $"journal)") : string.Create(CultureInfo.InvariantCulture, $"+{s.JournalTail} journal"),
            Number(s.BatchesApplied),
            s.LastEpochLoss is { } el ? string.Create(CultureInfo.InvariantCulture, $"{s.EpochsCompleted} (loss {el:F4})") : Number(s.EpochsCompleted),
            Number(s.FeaturesQueueDepth),
            Number(s.PoisonCount));
        var rows = new List<IRenderable> { hospitals, server };
        foreach (var r in s.LatestReasons)
        {
            rows.Add(new Text(string.Create(CultureInfo.InvariantCulture,
                $"poisoned {r.At:u} ({Printable.Escape(r.Host)}, {r.DequeueCount} deliveries): {Printable.Escape(r.Reason)}")));
        }
        rows.Add(new Text(string.Create(CultureInfo.InvariantCulture, $"read {status.ReadAt:u}")));
        return new Rows(rows);
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Ago(TimeSpan age) => age.TotalSeconds < 0 ? "now"
        : age.TotalSeconds < 120 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalSeconds:F0} s ago")
        : age.TotalMinutes < 120 ? string.Create(CultureInfo.InvariantCulture, $"{age.TotalMinutes:F0} min ago")
        : string.Create(CultureInfo.InvariantCulture, $"{age.TotalHours:F0} h ago");
}

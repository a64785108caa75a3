using System.Globalization;
using System.Text.Json;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// Where a run's durable side lives in the `runs` container (<see cref="StorageNames.RunsContainer"/>), written once: the
/// function's run store writes and reads it, `run create` writes the manifest, `run status` reads the rest.
/// `&lt;run&gt;/manifest.json`, `&lt;run&gt;/lease`, `&lt;run&gt;/journal/&lt;step&gt;.json` (written once each),
/// `&lt;run&gt;/checkpoints/&lt;number&gt;/{server.pt, optimizer.bin, state.json}` and `&lt;run&gt;/checkpoints/latest.json`
/// (the newest checkpoint's number). Steps and checkpoint numbers are written with 12 digits, so names sort in order.
/// </summary>
public static class RunLayout
{
    /// <summary>A checkpoint's server weights (a PyTorch state dict).</summary>
    public const string WeightsFile = "server.pt";

    /// <summary>A checkpoint's optimizer state.</summary>
    public const string OptimizerFile = "optimizer.bin";

    /// <summary>A checkpoint's run state (the function's RunState; <see cref="Runs.RunProgress"/> is what `run status` reads of it).</summary>
    public const string StateFile = "state.json";

    /// <summary>JSON of the run's documents other than the manifest (journal entries, run state, the latest pointer).</summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    public static string Manifest(string run) => $"{run}/manifest.json";

    /// <summary>The blob whose lease makes one server instance the run's only writer.</summary>
    public static string Lease(string run) => $"{run}/lease";

    /// <summary>Prefix of the run's journal entries.</summary>
    public static string JournalFolder(string run) => $"{run}/journal/";

    public static string JournalEntry(string run, long step) => string.Create(CultureInfo.InvariantCulture, $"{run}/journal/{step:D12}.json");

    /// <summary>Prefix of the run's checkpoints (and of the latest pointer).</summary>
    public static string CheckpointsFolder(string run) => $"{run}/checkpoints/";

    /// <summary>One file of checkpoint <paramref name="number"/>: <see cref="WeightsFile"/>, <see cref="OptimizerFile"/> or <see cref="StateFile"/>.</summary>
    public static string CheckpointFile(string run, long number, string file)
        => string.Create(CultureInfo.InvariantCulture, $"{run}/checkpoints/{number:D12}/{file}");

    /// <summary>The pointer to the newest checkpoint (<see cref="Runs.LatestCheckpoint"/>).</summary>
    public static string LatestCheckpoint(string run) => $"{run}/checkpoints/latest.json";
}

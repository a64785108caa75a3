using System.Text.Json;

namespace SplitFunctions.ClientAgent.State;

/// <summary>One finished epoch at this hospital, for reports: mean train loss from the function's replies, and the validation score if one was taken.</summary>
public sealed record EpochHistory(int Epoch, double MeanTrainLoss, int Samples, int Batches, string? ValidationMetric, double? ValidationValue,
    DateTimeOffset CompletedAt);

/// <summary>`&lt;state&gt;/&lt;run&gt;/history.json`: the per-epoch history, rewritten atomically.</summary>
public static class TrainingHistoryFile
{
    public static List<EpochHistory> Load(string path)
    {
        if (!File.Exists(path)) return [];
        try
        {
            return JsonSerializer.Deserialize<List<EpochHistory>>(File.ReadAllBytes(path), StateJson.Options) ?? [];
        }
        catch (JsonException e)
        {
            throw new AgentException(ExitCode.StateCorrupt, $"history {path} is unreadable ({e.Message}); delete it (only reports use it).", e);
        }
    }

    /// <summary>Adds or replaces the entry of one epoch.</summary>
    public static void Record(string path, EpochHistory entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var history = Load(path);
        history.RemoveAll(h => h.Epoch == entry.Epoch);
        history.Add(entry);
        history.Sort((a, b) => a.Epoch.CompareTo(b.Epoch));
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(history, StateJson.Options));
    }
}

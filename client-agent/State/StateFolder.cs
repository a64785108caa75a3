using System.Globalization;
using System.Text.Json;

namespace SplitFunctions.ClientAgent.State;

/// <summary>
/// The files of one run under the state folder: `state.json`, the client weights and optimizer state it names, the sealed
/// frame of the pending message, history and evaluation results. Holds the folder's lock while open.
/// </summary>
public sealed class StateFolder : IDisposable
{
    private const string StateFile = "state.json";
    private const string PendingFile = "pending.sfe";
    private readonly StateLock _lock;

    private StateFolder(StateLock stateLock, string runFolder)
    {
        _lock = stateLock;
        RunFolder = runFolder;
    }

    public string RunFolder { get; }

    public string HistoryPath => Path.Combine(RunFolder, "history.json");

    public string EvaluationPath => Path.Combine(RunFolder, "evaluation.json");

    /// <summary>Takes the state folder's lock and opens (creating) the run's folder.</summary>
    public static StateFolder Open(string stateFolder, string runId)
    {
        var stateLock = StateLock.Acquire(stateFolder);
        try
        {
            var runFolder = Path.Combine(stateFolder, runId);
            Directory.CreateDirectory(runFolder);
            return new StateFolder(stateLock, runFolder);
        }
        catch
        {
            stateLock.Dispose();
            throw;
        }
    }

    /// <summary>Reads a run's state without the lock (for `status`): the file is replaced atomically, so it is always whole.</summary>
    public static AgentState? Peek(string stateFolder, string runId) => Read(Path.Combine(stateFolder, runId));

    /// <summary>The saved state, or null before the first step.</summary>
    public AgentState? Load() => Read(RunFolder);

    private static AgentState? Read(string runFolder)
    {
        var path = Path.Combine(runFolder, StateFile);
        if (!File.Exists(path)) return null;
        try
        {
            var state = JsonSerializer.Deserialize<AgentState>(File.ReadAllBytes(path), StateJson.Options)
                        ?? throw new JsonException("the file holds JSON null");
            if (state.Version != AgentState.CurrentVersion) throw new JsonException($"state version {state.Version} was written by another agent release; "
                + $"this agent reads version {AgentState.CurrentVersion}");
            return state;
        }
        catch (JsonException e)
        {
            throw new AgentException(ExitCode.StateCorrupt,
                $"local state {path} is unreadable ({e.Message}). Move the run folder {runFolder} aside to start this hospital's part of the run afresh.", e);
        }
    }

    /// <summary>The commit point of every step: everything the state names must already be on disk.</summary>
    public void Save(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        AtomicFile.Write(Path.Combine(RunFolder, StateFile),
            JsonSerializer.SerializeToUtf8Bytes(state with { UpdatedAt = DateTimeOffset.UtcNow }, StateJson.Options));
    }

    public void WritePendingFrame(ReadOnlySpan<byte> sealedFrame) => AtomicFile.Write(Path.Combine(RunFolder, PendingFile), sealedFrame);

    /// <summary>The sealed bytes of the pending message, exactly as first sent.</summary>
    public byte[] ReadPendingFrame(long sequence)
    {
        var path = Path.Combine(RunFolder, PendingFile);
        if (!File.Exists(path))
        {
            throw new AgentException(ExitCode.StateCorrupt,
                string.Create(CultureInfo.InvariantCulture, $"local state says message #{sequence} is pending, but its frame {path} is missing. Move "
                    + $"{RunFolder} aside to restart this hospital's part of the run."));
        }
        return File.ReadAllBytes(path);
    }

    public void DeletePendingFrame() => File.Delete(Path.Combine(RunFolder, PendingFile));

    /// <summary>Writes new weight files (never overwriting the ones the current state names) and returns their names.</summary>
    public (string Client, string Optimizer) WriteWeights(long step, byte[] client, byte[] optimizer)
    {
        var clientName = string.Create(CultureInfo.InvariantCulture, $"client.{step:D9}.pt");
        var optimizerName = string.Create(CultureInfo.InvariantCulture, $"optimizer.{step:D9}.bin");
        AtomicFile.Write(Path.Combine(RunFolder, clientName), client);
        AtomicFile.Write(Path.Combine(RunFolder, optimizerName), optimizer);
        return (clientName, optimizerName);
    }

    /// <summary>
    /// U-shaped mode: the sealed bytes of one leg, kept under its own sequence so the forward leg survives until the backward leg is committed.
    /// </summary>
    public void WriteLegFrame(long sequence, ReadOnlySpan<byte> sealedFrame) => AtomicFile.Write(Path.Combine(RunFolder, LegFile(sequence)), sealedFrame);

    public byte[] ReadLegFrame(long sequence)
    {
        var path = Path.Combine(RunFolder, LegFile(sequence));
        if (!File.Exists(path))
        {
            throw new AgentException(ExitCode.StateCorrupt,
                string.Create(CultureInfo.InvariantCulture, $"local state says U-shaped leg #{sequence} is pending, but its frame {path} is missing. Move "
                    + $"{RunFolder} aside to restart this hospital's part of the run."));
        }
        return File.ReadAllBytes(path);
    }

    /// <summary>Deletes the leg frames other than <paramref name="keep"/>'s.</summary>
    public void DeleteLegFrames(long? keep = null)
    {
        foreach (var file in Directory.EnumerateFiles(RunFolder, "leg.*.sfe"))
        {
            if (keep is null || Path.GetFileName(file) != LegFile(keep.Value)) File.Delete(file);
        }
    }

    /// <summary>U-shaped mode: new tail weight files for <paramref name="step"/>.</summary>
    public (string Tail, string Optimizer) WriteTailWeights(long step, byte[] tail, byte[] optimizer)
    {
        var tailName = string.Create(CultureInfo.InvariantCulture, $"tail.{step:D9}.pt");
        var optimizerName = string.Create(CultureInfo.InvariantCulture, $"tail-optimizer.{step:D9}.bin");
        AtomicFile.Write(Path.Combine(RunFolder, tailName), tail);
        AtomicFile.Write(Path.Combine(RunFolder, optimizerName), optimizer);
        return (tailName, optimizerName);
    }

    /// <summary>Pipelined vanilla: the sealed bytes of one batch in flight, under its sequence, until the batch is applied.</summary>
    public void WriteInFlightFrame(long sequence, ReadOnlySpan<byte> sealedFrame) =>
        AtomicFile.Write(Path.Combine(RunFolder, InFlightFile(sequence)), sealedFrame);

    public byte[] ReadInFlightFrame(long sequence)
    {
        var path = Path.Combine(RunFolder, InFlightFile(sequence));
        if (!File.Exists(path))
        {
            throw new AgentException(ExitCode.StateCorrupt,
                string.Create(CultureInfo.InvariantCulture, $"local state says pipelined batch #{sequence} is in flight, but its frame {path} is missing. "
                    + $"Move {RunFolder} aside to restart this hospital's part of the run."));
        }
        return File.ReadAllBytes(path);
    }

    /// <summary>Deletes the in-flight frames the state does not name (applied batches, or a frame written just before a crash).</summary>
    public void DeleteInFlightFrames(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var keep = (state.InFlight ?? []).Select(p => InFlightFile(p.Sequence)).ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(RunFolder, "inflight.*.sfe"))
        {
            if (!keep.Contains(Path.GetFileName(file))) File.Delete(file);
        }
    }

    private static string InFlightFile(long sequence) => string.Create(CultureInfo.InvariantCulture, $"inflight.{sequence:D12}.sfe");

    private static string LegFile(long sequence) => string.Create(CultureInfo.InvariantCulture, $"leg.{sequence:D12}.sfe");

    public byte[] ReadFile(string name)
    {
        var path = Path.Combine(RunFolder, name);
        if (!File.Exists(path))
            throw new AgentException(ExitCode.StateCorrupt, $"local state names {path}, which is missing. Move {RunFolder} aside to restart this hospital's "
                + $"part of the run.");
        return File.ReadAllBytes(path);
    }

    /// <summary>Removes weight files the committed state no longer names (left by the step before, or by a crash).</summary>
    public void RemoveStaleWeights(AgentState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        // Pipelined batches in flight keep the weights their forward ran with (a restart recomputes it with them).
        var forwards = (state.InFlight ?? []).Select(p => p.ForwardWeights).OfType<string>().ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(RunFolder).Select(Path.GetFileName))
        {
            var isWeights = file!.StartsWith("client.", StringComparison.Ordinal) || file.StartsWith("optimizer.", StringComparison.Ordinal)
                || file.StartsWith("tail", StringComparison.Ordinal);
            if (isWeights && file != state.ClientWeights && file != state.OptimizerState && file != state.TailWeights
                && file != state.TailOptimizerState && !forwards.Contains(file)) File.Delete(Path.Combine(RunFolder, file));
        }
    }

    public void Dispose() => _lock.Dispose();
}

/// <summary>JSON settings of the state files.</summary>
internal static class StateJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}

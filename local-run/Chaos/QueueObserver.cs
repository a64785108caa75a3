using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>
/// What the harness sees of the queues, straight on Azurite: the valid messages of the run that passed through `features`
/// (the material of duplicates, reorders and replays), and the poison records on `features-rejections`, each matched
/// with the hostile message it belongs to or kept as a valid message that was poisoned.
/// </summary>
public sealed class QueueObserver(StorageConnection storage, string runId, string keyFolder)
{
    private readonly QueueClient rejections = storage.GetQueueClient(StorageNames.FeaturesRejectionsQueue);
    private readonly List<string> seen = [];
    private readonly HashSet<string> seenMacs = new(StringComparer.Ordinal);
    private readonly List<HostileMessage> hostile = [];
    private readonly Dictionary<HostileMessage, PoisonRecord> matched = [];
    private readonly List<PoisonRecord> unmatched = [];

    /// <summary>`features` as stored (raw): the harness writes and reads exactly what is on the wire.</summary>
    public QueueClient Features { get; } = storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());

    /// <summary>Decoded texts of the run's valid messages seen so far, oldest first.</summary>
    public IReadOnlyList<string> Seen => seen;

    public IReadOnlyList<HostileMessage> Hostile => hostile;

    public int Matched => matched.Count;

    /// <summary>Records that belong to no hostile message: valid messages that were poisoned (none may be).</summary>
    public IEnumerable<PoisonRecord> Unmatched => unmatched.Where(r => !hostile.Any(h => Matches(r, h)));

    public void Sent(HostileMessage message) => hostile.Add(message);

    /// <summary>The reason a hostile message was poisoned with, or null while (or if) it is not.</summary>
    public string? ReasonFor(HostileMessage message) => matched.GetValueOrDefault(message)?.Reason;

    /// <summary>Peeks at `features` and remembers the valid messages of the run it has not seen.</summary>
    public async Task WatchAsync(CancellationToken ct)
    {
        foreach (var message in (await Features.PeekMessagesAsync(32, ct).ConfigureAwait(false)).Value)
        {
            if (QueueText.TryDecode(message.Body.ToString(), out _) is not { } text) continue;
            try
            {
                var frame = MessageCodec.ParseFrame(text);
                if (frame.RunId == runId && frame.Sequence < HostileMessages.FirstSequence && seenMacs.Add(frame.Mac!)) seen.Add(text);
            }
            catch (ProtocolException)
            {
                // A hostile message: not material for duplicates.
            }
        }
    }

    /// <summary>A message as a hospital's agent sent it: not one of the storm's, and its MAC verifies.</summary>
    public bool IsValid(string wire)
    {
        if (QueueText.TryDecode(wire, out _) is not { } text) return false;
        try
        {
            var frame = MessageCodec.ParseFrame(text);
            return frame.Sequence < HostileMessages.FirstSequence
                && MessageAuthentication.Verify(frame, new LocalKeyStore(keyFolder).GetKey(frame.HospitalId, frame.KeyId));
        }
        catch (ProtocolException)
        {
            return false;
        }
    }

    /// <summary>Takes every record off `features-rejections` (the harness owns this Azurite) and matches the new ones.</summary>
    public async Task CollectPoisonAsync(CancellationToken ct)
    {
        while (true)
        {
            var batch = (await rejections.ReceiveMessagesAsync(32, TimeSpan.FromMinutes(5), ct).ConfigureAwait(false)).Value;
            foreach (var message in batch)
            {
                unmatched.Add(PoisonRecord.Parse(message.Body.ToString()));
                await rejections.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
            }
            if (batch.Length < 32) break;
        }
        // Each record is compared once with the hostile messages still waiting (records can arrive before their message is listed).
        foreach (var record in unmatched.ToList())
        {
            if (hostile.FirstOrDefault(h => !matched.ContainsKey(h) && Matches(record, h)) is not { } owner) continue;
            matched[owner] = record;
            unmatched.Remove(record);
        }
    }

    private static bool Matches(PoisonRecord record, HostileMessage message) => record.Message.Contains(message.Needle, StringComparison.Ordinal);
}

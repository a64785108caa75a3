using System.Globalization;
using System.Text;
using Azure.Storage.Queues;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.Chaos;

/// <summary>The kinds of hostile message the storm mixes into the valid traffic.</summary>
public enum HostileKind
{
    RawText,
    WrongEncoding,
    Oversized,
    WrongRun,
    ForgedHospital,
    Replay,
    TamperedBlob,
    NaNTensor,

    /// <summary>The insider (<see cref="InsiderMessages"/>): every value 3e38 (U-shaped: the output gradient of a backward leg).</summary>
    InsiderHugeValues,

    /// <summary>The insider: one value +Inf.</summary>
    InsiderInfinity,

    /// <summary>The insider: eight times the manifest's batch size.</summary>
    InsiderOversizedBatch,

    /// <summary>The insider: a 24 MiB blob behind a message that announces 4 KiB.</summary>
    InsiderHugeBlob,

    /// <summary>The insider: a message whose blob was deleted before it was read.</summary>
    InsiderDeletedBlob,

    /// <summary>The insider: a leg the run is not waiting for (a backward leg without its forward leg, a `done` counting chunks never sent).</summary>
    InsiderOutOfOrderLeg,
}

/// <summary>One hostile message on `features`: its kind and the text its poison record must contain (or equal) to be matched.</summary>
public sealed record HostileMessage(HostileKind Kind, string Needle);

/// <summary>
/// Writes hostile messages straight to Azurite's `features` queue (the attacker is not behind the outage proxies). Each one
/// carries a sequence far above any real one (or a marker in its text), so its poison record can be found again and a
/// message that were wrongly accepted could not be mistaken for, or displace, a hospital's real step.
/// </summary>
public sealed class HostileMessages(StorageConnection storage, string keyFolder, string runId, FrameKind stepKind, IReadOnlyList<string> hospitals)
{
    /// <summary>The kinds of the storm (the insider's are sent by <see cref="InsiderMessages"/>).</summary>
    public static readonly HostileKind[] StormKinds =
    [
        HostileKind.RawText, HostileKind.WrongEncoding, HostileKind.Oversized, HostileKind.WrongRun, HostileKind.ForgedHospital, HostileKind.Replay,
        HostileKind.TamperedBlob, HostileKind.NaNTensor,
    ];

    /// <summary>Sequences of hostile messages start here (a real run never gets near it).</summary>
    public const long FirstSequence = 1_000_000_000;

    private static readonly byte[] Utf16Bom = [0xff, 0xfe];
    // A well-formed two-sample frame: what a hostile message makes of it (tampered, NaN) is what must be caught.
    private static readonly FrameTensor Features = new(ElementType.Float32, [2, 1], new float[] { 0.5f, 0.25f });
    private static readonly FrameTensor Labels = new(ElementType.Float32, [2, 1], new float[] { 0f, 1f });
    private readonly QueueClient features = storage.GetQueueClient(StorageNames.FeaturesQueue, StorageClientDefaults.RawQueue());
    private readonly LocalKeyStore keys = new(keyFolder);
    private long next = FirstSequence;

    /// <summary>Sends one message of <paramref name="kind"/>; <paramref name="seen"/> are valid messages of the run seen on the queue (for replays).</summary>
    public async Task<HostileMessage> SendAsync(HostileKind kind, Random random, IReadOnlyList<string> seen, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(random);
        ArgumentNullException.ThrowIfNull(seen);
        var sequence = next++;
        var marker = string.Create(CultureInfo.InvariantCulture, $"chaos-{sequence}");
        var hospital = hospitals[random.Next(hospitals.Count)];
        var seqNeedle = string.Create(CultureInfo.InvariantCulture, $"\"seq\":{sequence}");
        string wire;
        string needle = seqNeedle;
        switch (kind)
        {
            case HostileKind.RawText:
                // What queue tools write: the JSON itself, not Base64.
                wire = $$"""{"v":2,"run":"{{runId}}","hospital":"{{hospital}}","seq":{{sequence}},"kind":"train","chaos":"{{marker}}"}""";
                break;
            case HostileKind.WrongEncoding:
                wire = Convert.ToBase64String([.. Utf16Bom, .. Encoding.Unicode.GetBytes($$"""{"v":2,"chaos":"{{marker}}"}""")]);
                needle = wire;
                break;
            case HostileKind.Oversized:
                // Base64 of more than 48 KiB does not fit a queue message, so an oversized one arrives raw (60 KiB).
                wire = $$"""{"chaos":"{{marker}}","pad":"{{new string('x', 60 * 1024)}}"}""";
                needle = marker;
                break;
            case HostileKind.WrongRun:
                wire = Signed(Message(hospital, sequence, "chaos-no-such-run", hospital), keys.GetKey(hospital));
                break;
            case HostileKind.ForgedHospital:
                {
                    // Hospital A names B: with A's key id (the server holds no such key of B), or with B's key id and A's MAC.
                    var other = hospitals[(hospitals.ToList().IndexOf(hospital) + 1) % hospitals.Count];
                    var attacker = keys.GetKey(other);
                    var forgedKeyId = random.Next(2) == 0 ? attacker.KeyId : keys.GetKey(hospital).KeyId;
                    var forged = Message(hospital, sequence, runId, hospital) with { KeyId = forgedKeyId };
                    wire = QueueText.Encode(MessageCodec.Serialize(forged with { Mac = MessageAuthentication.Compute(forged, attacker.Key) }));
                    break;
                }
            case HostileKind.Replay:
                {
                    // An old message of the run replayed as a new step: its MAC does not cover the new sequence.
                    var original = seen.Count > 0 ? MessageCodec.ParseFrame(seen[random.Next(seen.Count)])
                        : MessageAuthentication.Sign(Message(hospital, 1, runId, hospital), keys.GetKey(hospital));
                    wire = QueueText.Encode(MessageCodec.Serialize(original with { Sequence = sequence }));
                    break;
                }
            case HostileKind.TamperedBlob:
                {
                    var key = keys.GetKey(hospital);
                    var blob = SecureFrameCodec.Seal(key, new CipherContext(runId, hospital, sequence, PayloadKind.Features, key.KeyId),
                        Features, Labels).Blob;
                    blob[^1] ^= 0x5a; // one bit pattern of the ciphertext flipped on the way: authentication must fail
                    wire = await UploadAndSignAsync(key, sequence, blob, ct).ConfigureAwait(false);
                    break;
                }
            case HostileKind.NaNTensor:
                {
                    // A frame the hospital's own key sealed, whose last label is NaN (the encoder refuses NaN, so it is written in).
                    var key = keys.GetKey(hospital);
                    var plain = TensorFrame.Encode(Features, Labels);
                    BitConverter.TryWriteBytes(plain.AsSpan(plain.Length - 4), float.NaN);
                    var blob = FrameCipher.Seal(key.Key, new CipherContext(runId, hospital, sequence, PayloadKind.Features, key.KeyId), plain);
                    wire = await UploadAndSignAsync(key, sequence, blob, ct).ConfigureAwait(false);
                    break;
                }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
        await features.SendMessageAsync(wire, ct).ConfigureAwait(false);
        return new HostileMessage(kind, needle);
    }

    private FrameMessage Message(string hospital, long sequence, string run, string replyHospital) => new()
    {
        RunId = run,
        HospitalId = hospital,
        Sequence = sequence,
        Kind = stepKind,
        Blob = StorageNames.FrameBlob(StorageNames.FeaturesFolder, run, sequence),
        Length = 4096,
        Sha256 = new string('a', 64),
        ReplyQueue = StorageNames.RepliesQueue(replyHospital),
        KeyId = keys.GetKey(hospital).KeyId,
    };

    private static string Signed(FrameMessage message, HospitalKey key) => QueueText.Encode(MessageCodec.Serialize(MessageAuthentication.Sign(message, key)));

    private async Task<string> UploadAndSignAsync(HospitalKey key, long sequence, byte[] blob, CancellationToken ct)
    {
        var name = StorageNames.FrameBlob(StorageNames.FeaturesFolder, runId, sequence);
        await storage.GetBlobContainerClient(StorageNames.HospitalContainer(key.HospitalId)).GetBlobClient(name)
            .UploadAsync(BinaryData.FromBytes(blob), overwrite: true, ct).ConfigureAwait(false);
        return Signed(Message(key.HospitalId, sequence, runId, key.HospitalId) with { Length = blob.Length, Sha256 = SecureFrameCodec.Digest(blob) }, key);
    }
}

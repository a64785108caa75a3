using System.Security.Cryptography;
using Azure;
using SplitFunctions.Core;
using SplitFunctions.Core.Protocol;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Functions.Training;

/// <summary>One decoded tensor: values and shape (batch first).</summary>
public sealed record FrameTensorData(float[] Values, long[] Shape)
{
    public int Batch => checked((int)Shape[0]);
}

/// <summary>
/// Encrypted frames in a hospital's container: download, check length and SHA-256 against the message, open the
/// envelope for exactly (run, hospital, sequence, kind, key id), decode and validate; and the reverse for replies.
/// </summary>
public sealed class FrameIo(StorageConnection storage, IKeyProvider keys)
{
    /// <summary>Largest sealed frame accepted (a 2048-sample batch of 32x32x32 fp32 activations is 256 MiB; nothing larger is a batch).</summary>
    public const long MaxFrameBytes = 256L * 1024 * 1024;

    public BlobContainerClient Container(string hospital) => storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital));

    public QueueClient Replies(string hospital) => storage.GetQueueClient(StorageNames.RepliesQueue(hospital));

    /// <summary>Reads the frame a message points to; every failure to trust it is a <see cref="ProtocolException"/>.</summary>
    public async Task<IReadOnlyList<FrameTensorData>> ReadAsync(string run, string hospital, long sequence, string blob, long length, string sha256, string keyId, PayloadKind kind, CancellationToken ct)
    {
        if (length <= 0 || length > MaxFrameBytes)
        {
            throw new ProtocolException(ProtocolRejection.Oversized, $"frame length {length} is outside 1..{MaxFrameBytes} bytes");
        }
        var expectedBlob = StorageNames.FrameBlob(FolderFor(kind), run, sequence);
        if (!string.Equals(blob, expectedBlob, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.WrongContext, $"blob '{blob}' is not where sequence {sequence} of run '{run}' lives ('{expectedBlob}')");
        }
        byte[] sealedBytes;
        try
        {
            sealedBytes = (await Container(hospital).GetBlobClient(blob).DownloadContentAsync(cancellationToken: ct).ConfigureAwait(false)).ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"blob '{blob}' does not exist in {StorageNames.HospitalContainer(hospital)}");
        }
        if (sealedBytes.Length != length)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"blob '{blob}' has {sealedBytes.Length} bytes, the message says {length}");
        }
        var actual = Convert.ToHexStringLower(SHA256.HashData(sealedBytes));
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ProtocolException(ProtocolRejection.Tampered, $"blob '{blob}' SHA-256 {actual} differs from the message's {sha256}");
        }
        var key = await keys.GetKeyAsync(hospital, keyId, ct).ConfigureAwait(false);
        var plaintext = Envelope.Open(key.Key, new EnvelopeContext(run, hospital, sequence, kind, keyId), sealedBytes);
        return Decode(plaintext);
    }

    /// <summary>Seals and uploads tensors as the reply blob; returns its name, length and SHA-256.</summary>
    public async Task<(string Blob, long Length, string Sha256)> WriteAsync(string run, string hospital, long sequence, PayloadKind kind, string keyId,
        ElementType wireType, IReadOnlyList<FrameTensorData> tensors, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var frame = Encode(tensors, wireType);
        var key = await keys.GetKeyAsync(hospital, keyId, ct).ConfigureAwait(false);
        var sealedBytes = Envelope.Seal(key.Key, new EnvelopeContext(run, hospital, sequence, kind, keyId), frame);
        var blob = StorageNames.FrameBlob(FolderFor(kind), run, sequence);
        await Container(hospital).GetBlobClient(blob).UploadAsync(sealedBytes, cancellationToken: ct).ConfigureAwait(false);
        return (blob, sealedBytes.Length, Convert.ToHexStringLower(SHA256.HashData(sealedBytes)));
    }

    public static string FolderFor(PayloadKind kind) => kind switch
    {
        PayloadKind.Features => "features",
        PayloadKind.Gradients => "gradients",
        PayloadKind.Predictions => "predictions",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    private static IReadOnlyList<FrameTensorData> Decode(byte[] frame) => ProtocolAdapter.Decode(frame);

    private static byte[] Encode(IReadOnlyList<FrameTensorData> tensors, ElementType wireType) => ProtocolAdapter.Encode(tensors, wireType);
}

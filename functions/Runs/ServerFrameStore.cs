using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Functions.Runs;

/// <summary>Where the time of reading or writing one sealed frame went, in milliseconds.</summary>
public sealed record FrameTimings(double TransferMs, double CryptoMs);

/// <summary>
/// The most a frame of a run may cost before it is trusted: sealed bytes (checked against the message's announced length
/// and the blob's stored size before any download) and decoded elements (checked in the frame header before decoding).
/// </summary>
public sealed record FrameBounds(long MaxSealedBytes, int MaxElements)
{
    /// <summary>The protocol's own limits, for callers that know no run.</summary>
    public static FrameBounds Protocol { get; } = new(MessageCodec.MaxPayloadBytes, TensorFrame.DefaultMaxElements);
}

/// <summary>
/// The frame store seen from the server (the hospital's side is the agent's <c>HospitalFrameStore</c>).
/// Sealed frames in a hospital's container: download, check length and SHA-256 against the message, open the envelope
/// for exactly (run, hospital, sequence, kind, key id), decode and validate; and the reverse for replies.
/// The one place the function touches blobs of frames, so the storage client can be swapped here.
/// </summary>
// The download gate's SemaphoreSlim never creates its wait handle (WaitAsync only), so there is nothing to dispose.
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "SemaphoreSlim without AvailableWaitHandle holds no OS handle")]
public sealed class ServerFrameStore(StorageConnection storage, IKeyProvider keys)
{
    /// <summary>Largest sealed frame accepted before downloading it (the message's announced length).</summary>
    public const long MaxFrameBytes = MessageCodec.MaxPayloadBytes;

    /// <summary>Frames read ahead (<see cref="Prefetch"/>) and not yet taken; a handful at most.</summary>
    private const int MaxPrefetched = 4;

    /// <summary>
    /// Downloads in flight at once, prefetches and temporal windows included: with each bounded by its run's
    /// <see cref="FrameBounds"/>, this bounds the memory a flood of valid messages can hold in transfer.
    /// </summary>
    public const int MaxConcurrentDownloads = 4;

    private readonly SemaphoreSlim downloads = new(MaxConcurrentDownloads, MaxConcurrentDownloads);

    // Download buffers, reused frame after frame. A pool of its own rather than ArrayPool.Shared, which keeps an array
    // per size in each thread's slot (a download is rented on one pool thread and returned on another); here at most the
    // downloads in flight and the read-aheads are out at once, and no more are kept.
    private readonly ArrayPool<byte> downloadBuffers = ArrayPool<byte>.Create((int)MaxFrameBytes, MaxConcurrentDownloads + MaxPrefetched);

    // What features frames are decoded into (ReadAsync); a step hands its arrays back through Recycle.
    private readonly DecodedValuesPool decodedValues = new();

    private long bytesDownloaded;

    /// <summary>Bytes of frame content downloaded so far (reads and read-aheads): what untrusted messages made this instance fetch.</summary>
    public long BytesDownloaded => Interlocked.Read(ref bytesDownloaded);

    private readonly ConcurrentDictionary<string, Task<(DecodedTensor[] Tensors, FrameTimings Timings)?>> prefetched = new(StringComparer.Ordinal);

    public BlobContainerClient Container(string hospital) => storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital));

    /// <summary>The hospitals' keys (envelopes and message MACs).</summary>
    public IKeyProvider Keys => keys;

    public QueueClient Replies(string hospital) => storage.GetQueueClient(StorageNames.RepliesQueue(hospital));

    /// <summary>Reads the frame a message (or a journal entry) points to; every failure to trust it is a <see cref="ProtocolException"/>.</summary>
    public async Task<(DecodedTensor[] Tensors, FrameTimings Timings)> ReadAsync(
        string run, string hospital, long sequence, string? blob, long length, string? sha256, string? keyId, CancellationToken ct,
            PayloadKind kind = PayloadKind.Features, FrameBounds? bounds = null, string? inline = null)
    {
        bounds ??= FrameBounds.Protocol;
        CheckAnnounced(run, sequence, blob, length, sha256, keyId, bounds);
        if (inline is not null)
        {
            // Carried by the message (its MAC verified, the length just checked against the run): nothing to download.
            var clock = Stopwatch.StartNew();
            var sealedBytes = MessageCodec.InlineBytes(inline, length)!;
            var key = await keys.GetKeyAsync(hospital, keyId, ct).ConfigureAwait(false);
            var opened = SecureFrameCodec.OpenInPlace(key, new CipherContext(run, hospital, sequence, kind, keyId), sealedBytes, length, sha256,
                bounds.MaxElements);
            return (opened, new FrameTimings(0, clock.Elapsed.TotalMilliseconds));
        }
        if (kind != PayloadKind.Features)
        {
            return await ReadNowAsync(run, hospital, sequence, blob, length, sha256, keyId, bounds.MaxElements, ct, kind).ConfigureAwait(false);
        }
        if (prefetched.TryRemove(PrefetchKey(run, hospital, sequence, blob, length, sha256, keyId, bounds.MaxElements), out var ahead))
        {
            // Read ahead while the previous message computed: the step waits only for what is left of it.
            var wait = Stopwatch.StartNew();
            if (await ahead.ConfigureAwait(false) is { } done) return (done.Tensors, new FrameTimings(wait.Elapsed.TotalMilliseconds, 0));
            // The early read failed: read again, so the failure (or a transient one's recovery) happens here, as usual.
        }
        return await ReadNowAsync(run, hospital, sequence, blob, length, sha256, keyId, bounds.MaxElements, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads a features frame with the checks of <see cref="ReadAsync"/>, downloaded into a pooled buffer and decoded into
    /// the arrays <paramref name="destinations"/> returns for its validated layouts (see
    /// <see cref="SecureFrameCodec.OpenInPlaceInto"/>): temporal epochs read every chunk again and again, and with their own
    /// arrays they allocate nothing per chunk.
    /// </summary>
    public async Task<TensorLayout[]> ReadIntoAsync(string run, string hospital, long sequence, string? blob, long length, string? sha256, string? keyId,
        FrameBounds bounds, Func<TensorLayout[], float[][]> destinations, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bounds);
        ArgumentNullException.ThrowIfNull(destinations);
        CheckAnnounced(run, sequence, blob, length, sha256, keyId, bounds);
        var (layouts, _) = await WithDownloadedFrameAsync(run, hospital, sequence, PayloadKind.Features, blob, length, sha256, keyId,
            (key, context, sealedBytes) => SecureFrameCodec.OpenInPlaceInto(key, context, sealedBytes, length, sha256, bounds.MaxElements, destinations),
            ct).ConfigureAwait(false);
        return layouts;
    }

    // What a message announces must name this run's blob for the sequence, a digest, a key and a length within the run's
    // bounds before anything is downloaded.
    private static void CheckAnnounced(string run, long sequence, [NotNull] string? blob, long length, [NotNull] string? sha256, [NotNull] string? keyId,
        FrameBounds bounds)
    {
        if (blob is null || sha256 is null || keyId is null)
        {
            throw new ProtocolException(ProtocolRejection.Malformed, "the message names no blob, SHA-256 or key id to read features from");
        }
        var maxLength = Math.Min(MaxFrameBytes, bounds.MaxSealedBytes);
        if (length <= 0 || length > maxLength)
        {
            throw new ProtocolException(ProtocolRejection.Oversized, $"frame length {length} is outside 1..{maxLength} bytes, the most a frame of this "
                + $"run's batch size and cut can take; nothing was downloaded");
        }
        var expectedBlob = FrameBlob(PayloadKind.Features, run, sequence);
        if (!string.Equals(blob, expectedBlob, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.Replayed, $"blob '{blob}' is not where sequence {sequence} of run '{run}' lives ('{expectedBlob}')");
        }
    }

    /// <summary>
    /// Starts reading the frame a message points to before its turn; <see cref="ReadAsync"/> for exactly the same frame
    /// (run, hospital, sequence, blob, length, SHA-256, key id, bounds) takes the result. Changes no state; a failure is kept
    /// quiet here and met again by <see cref="ReadAsync"/>. Nothing is downloaded unless <paramref name="authenticate"/>
    /// first proves the message came from its hospital (invariant 10: a forged message queued behind a valid one costs
    /// nothing) and the announced length is within the run's <paramref name="bounds"/>.
    /// </summary>
    public void Prefetch(string run, string hospital, long sequence, string? blob, long length, string? sha256, string? keyId, FrameBounds bounds,
        Func<CancellationToken, Task<bool>> authenticate, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(bounds);
        ArgumentNullException.ThrowIfNull(authenticate);
        if (blob is null || sha256 is null || keyId is null || length <= 0 || length > Math.Min(MaxFrameBytes, bounds.MaxSealedBytes)) return;
        // Entries never taken (the message turned out to be a replay, or was rejected first) must not pile up.
        if (prefetched.Count >= MaxPrefetched) prefetched.Clear();
        prefetched.TryAdd(PrefetchKey(run, hospital, sequence, blob, length, sha256, keyId, bounds.MaxElements),
            ReadQuietlyAsync(run, hospital, sequence, blob, length, sha256, keyId, bounds.MaxElements, authenticate, ct));
    }

    private async Task<(DecodedTensor[] Tensors, FrameTimings Timings)?> ReadQuietlyAsync(
        string run, string hospital, long sequence, string blob, long length, string sha256, string keyId, int maxElements,
            Func<CancellationToken, Task<bool>> authenticate, CancellationToken ct)
    {
        try
        {
            if (!await authenticate(ct).ConfigureAwait(false)) return null;
            return await ReadNowAsync(run, hospital, sequence, blob, length, sha256, keyId, maxElements, ct).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return null;
        }
    }

    private static string PrefetchKey(string run, string hospital, long sequence, string blob, long length, string sha256, string keyId, int maxElements) =>
        string.Join('\n', run, hospital, sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), blob,
            length.ToString(System.Globalization.CultureInfo.InvariantCulture), sha256, keyId,
            maxElements.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private async Task<(DecodedTensor[] Tensors, FrameTimings Timings)> ReadNowAsync(
        string run, string hospital, long sequence, string blob, long length, string sha256, string keyId, int maxElements, CancellationToken ct,
            PayloadKind kind = PayloadKind.Features)
    {
        DecodedTensor[] Open(HospitalKey key, CipherContext context, Span<byte> sealedBytes)
        {
            float[][]? arrays = null;
            var layouts = SecureFrameCodec.OpenInPlaceInto(key, context, sealedBytes, length, sha256, maxElements,
                layouts => arrays = [.. layouts.Select(l => decodedValues.Rent(l.ElementCount))]);
            return [.. layouts.Select((l, i) => new DecodedTensor(l.WireType, l.Shape, arrays![i]))];
        }
        return await WithDownloadedFrameAsync(run, hospital, sequence, kind, blob, length, sha256, keyId, Open, ct).ConfigureAwait(false);
    }

    private delegate T SealedFrameReader<out T>(HospitalKey key, CipherContext context, Span<byte> sealedBytes);

    // Download (gated, into a pooled buffer), the hospital's key, then open: one order for every read of a stored frame. The
    // buffer goes back to the pool however open ends (only ciphertext is left in it: open wipes the plaintext).
    private async Task<(T Value, FrameTimings Timings)> WithDownloadedFrameAsync<T>(string run, string hospital, long sequence, PayloadKind kind,
        string blob, long length, string sha256, string keyId, SealedFrameReader<T> open, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var buffer = await DownloadGatedAsync(hospital, blob, length, ct).ConfigureAwait(false);
        try
        {
            var transfer = clock.Elapsed.TotalMilliseconds;
            var key = await keys.GetKeyAsync(hospital, keyId, ct).ConfigureAwait(false);
            var value = open(key, new CipherContext(run, hospital, sequence, kind, keyId), buffer.AsSpan(0, (int)length));
            return (value, new FrameTimings(transfer, clock.Elapsed.TotalMilliseconds - transfer));
        }
        finally
        {
            downloadBuffers.Return(buffer);
        }
    }

    /// <summary>
    /// Hands back the value arrays of frames read by <see cref="ReadAsync"/> once nothing reads them any more (the step built its
    /// tensors from them): the next frames are decoded into them instead of fresh arrays. Only for arrays no one else holds.
    /// </summary>
    public void Recycle(DecodedTensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        decodedValues.Return([.. tensors.Select(t => t.Values)]);
    }

    private async Task<byte[]> DownloadGatedAsync(string hospital, string blob, long length, CancellationToken ct)
    {
        await downloads.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await DownloadAnnouncedAsync(hospital, blob, length, ct).ConfigureAwait(false);
        }
        finally
        {
            downloads.Release();
        }
    }

    // The blob's stored size (its properties, no content) must be the length its message announced; then exactly that
    // many bytes of that version of the blob are downloaded, so a blob grown or swapped meanwhile costs nothing more. They
    // land in a pooled buffer (the caller returns it to downloadBuffers; only ciphertext is left in it once opened in
    // place): the SDK's DownloadContent grows a MemoryStream to about twice the frame per download, large-object garbage
    // that made a streamed temporal epoch's peak memory grow with the data.
    private async Task<byte[]> DownloadAnnouncedAsync(string hospital, string blob, long length, CancellationToken ct)
    {
        var client = Container(hospital).GetBlobClient(blob);
        byte[]? buffer = null;
        try
        {
            var properties = (await client.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
            if (properties.ContentLength != length)
            {
                throw new ProtocolException(properties.ContentLength > length ? ProtocolRejection.Oversized : ProtocolRejection.Truncated,
                    $"blob '{blob}' holds {properties.ContentLength} bytes but its message announced {length}; nothing was downloaded");
            }
            using var download = (await client.DownloadStreamingAsync(new BlobDownloadOptions
            {
                Range = new HttpRange(0, length),
                Conditions = new BlobRequestConditions { IfMatch = properties.ETag },
            }, ct).ConfigureAwait(false)).Value;
            buffer = downloadBuffers.Rent((int)length);
            await download.Content.ReadExactlyAsync(buffer.AsMemory(0, (int)length), ct).ConfigureAwait(false);
            Interlocked.Add(ref bytesDownloaded, length);
            var done = buffer;
            buffer = null;
            return done;
        }
        catch (EndOfStreamException)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"blob '{blob}' ended before the {length} bytes its message announced; read it again "
                + "or send the frame again");
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"blob '{blob}' does not exist in {StorageNames.HospitalContainer(hospital)}: upload the "
                + $"frame before sending its message");
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            throw new ProtocolException(ProtocolRejection.Truncated, $"blob '{blob}' was replaced while it was read: upload a frame once, then send its "
                + $"message");
        }
        finally
        {
            if (buffer is not null) downloadBuffers.Return(buffer);
        }
    }

    /// <summary>Seals and uploads tensors as a reply blob; returns its name, length, SHA-256 and timings.</summary>
    public async Task<(string Blob, long Length, string Sha256, FrameTimings Timings)> WriteAsync(
        string run, string hospital, long sequence, PayloadKind kind, string keyId, ElementType wireType,
            IReadOnlyList<(float[] Values, long[] Shape)> tensors, CancellationToken ct)
    {
        var written = await WriteAsync(run, hospital, sequence, kind, keyId, wireType, tensors, inline: false, ct).ConfigureAwait(false);
        return (written.Blob, written.Length, written.Sha256, written.Timings);
    }

    /// <summary>
    /// <see cref="WriteAsync(string, string, long, PayloadKind, string, ElementType, IReadOnlyList{ValueTuple{float[], long[]}}, CancellationToken)"/>,
    /// and with <paramref name="inline"/> the sealed bytes' base64 when they fit a reply (<see cref="MessageCodec.MaxInlineBytes"/>). The blob is
    /// written either way: a repeated request is answered from it (invariant 4).
    /// </summary>
    public async Task<(string Blob, long Length, string Sha256, string? Inline, FrameTimings Timings)> WriteAsync(
        string run, string hospital, long sequence, PayloadKind kind, string keyId, ElementType wireType,
            IReadOnlyList<(float[] Values, long[] Shape)> tensors, bool inline, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        using var sealedFrame = await SealAsync(run, hospital, sequence, kind, keyId, wireType, tensors, ct).ConfigureAwait(false);
        var crypto = clock.Elapsed.TotalMilliseconds;
        var blob = FrameBlob(kind, run, sequence);
        await Container(hospital).GetBlobClient(blob).UploadReplacingAsync(new BinaryData(sealedFrame.Blob), ct).ConfigureAwait(false);
        var text = inline && sealedFrame.Length <= MessageCodec.MaxInlineBytes ? MessageCodec.InlineText(sealedFrame.Blob.Span) : null;
        return (blob, sealedFrame.Length, sealedFrame.Sha256, text, new FrameTimings(clock.Elapsed.TotalMilliseconds - crypto, crypto));
    }

    /// <summary>
    /// Writes a frame that came inside its message to the blob it names, as the hospital would have uploaded it, so the
    /// journal entry that names the blob can be replayed after a restart (<see cref="RunEffects.ReplayAsync"/>). The
    /// same sealed bytes every time (a replay writes what the digest in the MAC-checked message announces), in-region.
    /// </summary>
    public async Task KeepInlineFrameAsync(FrameMessage message, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(message);
        var bytes = MessageCodec.InlineBytes(message) ?? throw new ArgumentException("the message carries no inline frame", nameof(message));
        await Container(message.HospitalId).GetBlobClient(message.Blob!).UploadReplacingAsync(BinaryData.FromBytes(bytes), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// As <see cref="TryReadWrittenAsync"/>, with the bytes' base64 when <paramref name="inline"/> and they fit a reply:
    /// a repeated request that came inline is answered inline too.
    /// </summary>
    public async Task<(string Blob, long Length, string Sha256, string? Inline)?> TryReadWrittenAsync(string run, string hospital, long sequence,
        PayloadKind kind, bool inline, CancellationToken ct)
    {
        var blob = FrameBlob(kind, run, sequence);
        try
        {
            var content = (await Container(hospital).GetBlobClient(blob).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content.ToMemory();
            var text = inline && content.Length <= MessageCodec.MaxInlineBytes ? MessageCodec.InlineText(content.Span) : null;
            return (blob, content.Length, SecureFrameCodec.Digest(content.Span), text);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// The frame already written for this request, if any (name, length and digest of its bytes): a repeated request is
    /// answered with the bytes already announced, never sealed again under the same name while the hospital may be
    /// reading them (it would read bytes that fail the digest it was sent).
    /// </summary>
    public async Task<(string Blob, long Length, string Sha256)?> TryReadWrittenAsync(string run, string hospital, long sequence, PayloadKind kind,
        CancellationToken ct) =>
        await TryReadAnswerAsync(run, hospital, sequence, kind, ct).ConfigureAwait(false) is { } answer ? (answer.Blob, answer.Length, answer.Sha256) : null;

    /// <summary>
    /// As <see cref="TryReadWrittenAsync"/> for an evaluation's answer, with the model version stored beside it (null when
    /// the blob carries none: written by an earlier release).
    /// </summary>
    public async Task<(string Blob, long Length, string Sha256, ModelVersion? Model)?> TryReadAnswerAsync(string run, string hospital, long sequence,
        PayloadKind kind, CancellationToken ct)
    {
        var blob = FrameBlob(kind, run, sequence);
        try
        {
            var stored = (await Container(hospital).GetBlobClient(blob).DownloadContentAsync(ct).ConfigureAwait(false)).Value;
            var model = stored.Details.Metadata.TryGetValue(ModelMetadata, out var text)
                ? MessageCodec.ParseModel(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(text)))
                : null;
            return (blob, stored.Content.ToMemory().Length, SecureFrameCodec.Digest(stored.Content.ToMemory().Span), model);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// <see cref="WriteAsync"/> for a reply not kept in the run's journal (an evaluation's predictions or outputs): written
    /// only if no frame of that name exists, with the version of the model that made it; when one does (a copy of the
    /// request answered meanwhile), that one, with its own model version, is the answer.
    /// </summary>
    public async Task<(string Blob, long Length, string Sha256, ModelVersion? Model)> WriteOnceAsync(
        string run, string hospital, long sequence, PayloadKind kind, string keyId, ElementType wireType,
            IReadOnlyList<(float[] Values, long[] Shape)> tensors, ModelVersion model, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var sealedFrame = await SealAsync(run, hospital, sequence, kind, keyId, wireType, tensors, ct).ConfigureAwait(false);
        var blob = FrameBlob(kind, run, sequence);
        // Base64: metadata values are HTTP header values, and the version's JSON should not depend on what a proxy keeps.
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ModelMetadata] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(MessageCodec.SerializeModel(model))),
        };
        if (await Container(hospital).GetBlobClient(blob).UploadIfNotExistsAsync(new BinaryData(sealedFrame.Blob), metadata, ct).ConfigureAwait(false))
            return (blob, sealedFrame.Length, sealedFrame.Sha256, model);
        return await TryReadAnswerAsync(run, hospital, sequence, kind, ct).ConfigureAwait(false)
            ?? throw new IOException($"{blob} existed a moment ago and is gone now; the message is retried");
    }

    // The blob metadata that keeps an evaluation answer's model version (so a repeated request is answered with it).
    private const string ModelMetadata = "splitfnmodel";

    // The blob a frame of this kind and sequence is stored under: one place for the name every read and write agrees on.
    private static string FrameBlob(PayloadKind kind, string run, long sequence) => StorageNames.FrameBlob(StorageNames.PayloadFolder(kind), run, sequence);

    private async Task<PooledSealedFrame> SealAsync(
        string run, string hospital, long sequence, PayloadKind kind, string keyId, ElementType wireType,
            IReadOnlyList<(float[] Values, long[] Shape)> tensors, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var key = await keys.GetKeyAsync(hospital, keyId, ct).ConfigureAwait(false);
        var frame = tensors.Select(t => new FrameTensor(wireType, t.Shape, t.Values)).ToArray();
        return SecureFrameCodec.SealPooled(key, new CipherContext(run, hospital, sequence, kind, keyId), frame);
    }
}

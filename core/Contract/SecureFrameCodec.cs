using System.Buffers;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>A sealed frame ready to upload, with the length and seal digest (<see cref="FrameCipher.SealDigest"/>) its queue message announces.</summary>
public sealed record SealedFrame(byte[] Blob, string Sha256)
{
    public long Length => Blob.Length;
}

/// <summary>A sealed frame in a pooled buffer (<see cref="SecureFrameCodec.SealPooled"/>); the buffer goes back to the pool on dispose.</summary>
public sealed class PooledSealedFrame : IDisposable
{
    private byte[]? _buffer;

    internal PooledSealedFrame(byte[] buffer, int length, string sha256)
    {
        _buffer = buffer;
        Length = length;
        Sha256 = sha256;
    }

    /// <summary>The sealed bytes (ciphertext only: nothing secret is left in the buffer).</summary>
    public ReadOnlyMemory<byte> Blob => (_buffer ?? throw new ObjectDisposedException(nameof(PooledSealedFrame))).AsMemory(0, Length);

    public int Length { get; }

    /// <summary>The seal digest its queue message announces.</summary>
    public string Sha256 { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer) ArrayPool<byte>.Shared.Return(buffer);
    }
}

/// <summary>
/// Tensors to an uploadable sealed blob and back: frame codec, envelope and digest in the one order both sides use.
/// The plaintext frame lives only in a pooled buffer that is cleared before it is returned.
/// </summary>
public static class SecureFrameCodec
{
    /// <summary>Encodes <paramref name="tensors"/> as a frame and seals it for <paramref name="context"/>.</summary>
    public static SealedFrame Seal(HospitalKey key, CipherContext context, params ReadOnlySpan<FrameTensor> tensors)
    {
        RequireMatchingKey(key, context);
        var frameLength = TensorFrame.GetEncodedLength(tensors);
        var blob = GC.AllocateUninitializedArray<byte>(FrameCipher.GetSealedLength(context, frameLength));
        var frame = blob.AsSpan(FrameCipher.GetPlaintextOffset(context), frameLength);
        try
        {
            // Encoded straight into the blob and encrypted in place: no second copy of the plaintext exists.
            TensorFrame.Encode(tensors, frame);
            FrameCipher.SealInPlace(key.Key, context, blob);
        }
        catch
        {
            frame.Clear();
            throw;
        }
        return new SealedFrame(blob, FrameCipher.SealDigest(blob));
    }

    /// <summary>
    /// Like <see cref="Seal"/> but into a buffer from <see cref="ArrayPool{T}.Shared"/>: a fresh 4-8 MiB array per frame costs
    /// more in page faults and gen-2 collections than AES-GCM costs to encrypt it. Dispose the result once uploaded.
    /// </summary>
    public static PooledSealedFrame SealPooled(HospitalKey key, CipherContext context, params ReadOnlySpan<FrameTensor> tensors)
    {
        RequireMatchingKey(key, context);
        var frameLength = TensorFrame.GetEncodedLength(tensors);
        var length = FrameCipher.GetSealedLength(context, frameLength);
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        var blob = buffer.AsSpan(0, length);
        try
        {
            TensorFrame.Encode(tensors, blob.Slice(FrameCipher.GetPlaintextOffset(context), frameLength));
            FrameCipher.SealInPlace(key.Key, context, blob);
        }
        catch
        {
            blob.Clear();
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        return new PooledSealedFrame(buffer, length, FrameCipher.SealDigest(blob));
    }

    /// <summary>Opens the blob a frame message points at: length and SHA-256 first, then the envelope, then the frame.</summary>
    public static DecodedTensor[] Open(HospitalKey key, FrameMessage message, ReadOnlySpan<byte> blob, int maxElements = TensorFrame.DefaultMaxElements) =>
        Open(key, CipherContext.For(message), blob, message.Length, message.Sha256!, maxElements);

    /// <summary>Opens the blob a reply message points at: length and SHA-256 first, then the envelope, then the frame.</summary>
    public static DecodedTensor[] Open(HospitalKey key, ReplyMessage message, ReadOnlySpan<byte> blob, int maxElements = TensorFrame.DefaultMaxElements) =>
        Open(key, CipherContext.For(message), blob, message.Length, message.Sha256!, maxElements);

    /// <summary>
    /// Checks <paramref name="blob"/> against the announced length and digest, opens it for <paramref name="expected"/> and decodes the tensors.
    /// </summary>
    public static DecodedTensor[] Open(HospitalKey key, CipherContext expected, ReadOnlySpan<byte> blob, long expectedLength, string expectedSha256,
        int maxElements = TensorFrame.DefaultMaxElements)
    {
        RequireMatchingKey(key, expected);
        VerifyDigest(blob, expectedLength, expectedSha256);
        var frameLength = FrameCipher.GetPlaintextLength(blob);
        var buffer = ArrayPool<byte>.Shared.Rent(frameLength);
        try
        {
            FrameCipher.Open(key.Key, expected, blob, buffer.AsSpan(0, frameLength));
            return TensorFrame.Decode(buffer.AsSpan(0, frameLength), maxElements);
        }
        finally
        {
            buffer.AsSpan(0, frameLength).Clear();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Like <see cref="Open(HospitalKey, CipherContext, ReadOnlySpan{byte}, long, string, int)"/> but decrypts inside
    /// <paramref name="blob"/> (a buffer the caller downloaded into and gives up), saving a copy; the plaintext is wiped after decoding.
    /// </summary>
    public static DecodedTensor[] OpenInPlace(HospitalKey key, CipherContext expected, Span<byte> blob, long expectedLength, string expectedSha256,
        int maxElements = TensorFrame.DefaultMaxElements) =>
        WithOpenedFrame(key, expected, blob, expectedLength, expectedSha256, frame => TensorFrame.Decode(frame, maxElements));

    /// <summary>
    /// Like <see cref="OpenInPlace"/> but decodes tensor i into the first <see cref="TensorLayout.ElementCount"/> values of
    /// the i-th array <paramref name="destinations"/> returns for the frame's validated layouts, so a caller that pools or
    /// keeps its arrays allocates nothing per frame (a fresh multi-MiB array per frame is a large-object allocation that only
    /// gen-2 collections reclaim, and its first touch page-faults: most of an open's time). <paramref name="destinations"/>
    /// may throw to refuse the layouts.
    /// </summary>
    public static TensorLayout[] OpenInPlaceInto(HospitalKey key, CipherContext expected, Span<byte> blob, long expectedLength, string expectedSha256,
        int maxElements, Func<TensorLayout[], float[][]> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        return WithOpenedFrame(key, expected, blob, expectedLength, expectedSha256, frame =>
        {
            var layouts = TensorFrame.ReadLayout(frame, maxElements);
            var targets = destinations(layouts);
            if (targets.Length != layouts.Length)
                throw new ArgumentException($"{targets.Length} destinations for {layouts.Length} tensors", nameof(destinations));
            for (var i = 0; i < layouts.Length; i++) TensorFrame.DecodeTensor(frame, layouts[i], i, targets[i].AsSpan(0, layouts[i].ElementCount));
            return layouts;
        });
    }

    private delegate T FrameReader<out T>(ReadOnlySpan<byte> frame);

    // The one order of an in-place open: key, length and digest, then the envelope (authenticated decryption inside the
    // blob); only then does read see the plaintext frame, which is wiped however read ends.
    private static T WithOpenedFrame<T>(HospitalKey key, CipherContext expected, Span<byte> blob, long expectedLength, string expectedSha256,
        FrameReader<T> read)
    {
        RequireMatchingKey(key, expected);
        VerifyDigest(blob, expectedLength, expectedSha256);
        var frame = FrameCipher.OpenInPlace(key.Key, expected, blob);
        try
        {
            return read(frame);
        }
        finally
        {
            frame.Clear();
        }
    }

    /// <summary>The digest a message announces for <paramref name="sealedBlob"/> (<see cref="FrameCipher.SealDigest"/>).</summary>
    public static string Digest(ReadOnlySpan<byte> sealedBlob) => FrameCipher.SealDigest(sealedBlob);

    /// <summary>Throws unless <paramref name="blob"/> has exactly the length and seal digest its message announced.</summary>
    public static void VerifyDigest(ReadOnlySpan<byte> blob, long expectedLength, string expectedSha256)
    {
        ArgumentNullException.ThrowIfNull(expectedSha256);
        if (blob.Length < expectedLength)
        {
            throw new ProtocolException(ProtocolRejection.Truncated,
                $"The blob is {blob.Length} bytes but its message announced {expectedLength}: the upload or download was cut short. Send the frame again.");
        }
        if (blob.Length > expectedLength)
            throw new ProtocolException(ProtocolRejection.DigestMismatch, $"The blob is {blob.Length} bytes but its message announced {expectedLength}: the "
                + $"blob was overwritten after the message was sent.");
        if (!string.Equals(FrameCipher.SealDigest(blob), expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new ProtocolException(ProtocolRejection.DigestMismatch,
                "The blob's SHA-256 seal digest differs from the one in its message: the blob was overwritten (sealed again) or its header corrupted after "
                    + "the message was sent. It is refused.");
        }
    }

    private static void RequireMatchingKey(HospitalKey key, CipherContext context)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(context);
        if (key.HospitalId != context.HospitalId || key.KeyId != context.KeyId)
            throw new ArgumentException($"Key '{key.KeyId}' of hospital '{key.HospitalId}' does not match {context}.", nameof(key));
    }
}

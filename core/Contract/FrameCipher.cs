using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// AES-256-GCM envelope (docs/architecture.md, "Tensor frames and wire types"). Layout, little-endian:
/// <code>
/// header = "SFEN" | version u8 | kind u8 | reserved u16 (0) | sequence i64 | plaintext length i64
///          | key id (u8 length + ASCII) | run (u8 length + ASCII) | hospital (u8 length + ASCII)
/// blob   = header | nonce (12, random) | ciphertext | tag (16)
/// </code>
/// The whole header is the associated data, so every field of the context is authenticated. The context travels in
/// clear (it is in the blob name and queue message anyway) so that a mismatch is reported precisely, as a wrong key id
/// or a replay, before decryption; a blob whose header matches but fails the tag was altered.
/// </summary>
public static class FrameCipher
{
    /// <summary>"SFEN" as read little-endian.</summary>
    public const uint Magic = 0x4E454653;

    /// <summary>The envelope version this build writes and reads.</summary>
    public const byte CurrentVersion = 1;

    /// <summary>AES-256: 32-byte keys.</summary>
    public const int KeySize = 32;

    public const int NonceSize = 12;

    public const int TagSize = 16;

    private const int FixedHeaderLength = 24;

    /// <summary>Length of the blob <see cref="Seal(ReadOnlySpan{byte}, CipherContext, ReadOnlySpan{byte})"/> returns.</summary>
    public static int GetSealedLength(CipherContext context, int plaintextLength)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegative(plaintextLength);
        var length = (long)HeaderLength(context) + NonceSize + plaintextLength + TagSize;
        if (length > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(plaintextLength), plaintextLength, "the sealed blob would not fit one "
            + "buffer");
        return (int)length;
    }

    /// <summary>Seals <paramref name="plaintext"/> for <paramref name="context"/> into a new array.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> key, CipherContext context, ReadOnlySpan<byte> plaintext)
    {
        var blob = GC.AllocateUninitializedArray<byte>(GetSealedLength(context, plaintext.Length));
        Seal(key, context, plaintext, blob);
        return blob;
    }

    /// <summary>Seals into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Seal(ReadOnlySpan<byte> key, CipherContext context, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        RequireKey(key);
        context.Validate();
        var length = GetSealedLength(context, plaintext.Length);
        if (destination.Length < length) throw new ArgumentException($"The destination holds {destination.Length} bytes; the sealed blob needs "
            + $"{length}.", nameof(destination));

        var headerLength = WriteHeader(destination, context, plaintext.Length);
        var nonce = destination.Slice(headerLength, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, destination.Slice(headerLength + NonceSize, plaintext.Length), destination.Slice(length - TagSize, TagSize),
            destination[..headerLength]);
        return length;
    }

    /// <summary>Where the plaintext goes in a blob for <paramref name="context"/>, for <see cref="SealInPlace"/>.</summary>
    public static int GetPlaintextOffset(CipherContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return HeaderLength(context) + NonceSize;
    }

    /// <summary>
    /// Seals the plaintext the caller already wrote at <see cref="GetPlaintextOffset"/> of <paramref name="blob"/>
    /// (sized by <see cref="GetSealedLength"/>), encrypting it in place: large frames are encoded straight into the blob.
    /// </summary>
    public static void SealInPlace(ReadOnlySpan<byte> key, CipherContext context, Span<byte> blob)
    {
        RequireKey(key);
        context.Validate();
        var plaintextLength = blob.Length - GetSealedLength(context, 0);
        if (plaintextLength < 0) throw new ArgumentException("The blob is shorter than an empty sealed payload.", nameof(blob));
        var headerLength = WriteHeader(blob, context, plaintextLength);
        var nonce = blob.Slice(headerLength, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var text = blob.Slice(headerLength + NonceSize, plaintextLength);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, text, text, blob[^TagSize..], blob[..headerLength]);
    }

    /// <summary>Opens <paramref name="sealedBlob"/> in place (the ciphertext becomes the plaintext) and returns the plaintext slice.</summary>
    public static Span<byte> OpenInPlace(ReadOnlySpan<byte> key, CipherContext expected, Span<byte> sealedBlob)
    {
        var (headerLength, plaintextLength) = Authenticate(key, expected, sealedBlob);
        var text = sealedBlob.Slice(headerLength + NonceSize, plaintextLength);
        Decrypt(key, expected, sealedBlob, headerLength, text);
        return text;
    }

    /// <summary>
    /// Opens a blob sealed for exactly <paramref name="expected"/>; throws <see cref="ProtocolException"/> with the precise reason otherwise.
    /// </summary>
    public static byte[] Open(ReadOnlySpan<byte> key, CipherContext expected, ReadOnlySpan<byte> sealedBlob)
    {
        var plaintext = GC.AllocateUninitializedArray<byte>(GetPlaintextLength(sealedBlob));
        Open(key, expected, sealedBlob, plaintext);
        return plaintext;
    }

    /// <summary>Opens into <paramref name="destination"/> (at least <see cref="GetPlaintextLength"/> bytes); returns the bytes written.</summary>
    public static int Open(ReadOnlySpan<byte> key, CipherContext expected, ReadOnlySpan<byte> sealedBlob, Span<byte> destination)
    {
        var (headerLength, plaintextLength) = Authenticate(key, expected, sealedBlob);
        if (destination.Length < plaintextLength) throw new ArgumentException($"The destination holds {destination.Length} bytes; the plaintext has "
            + $"{plaintextLength}.", nameof(destination));
        Decrypt(key, expected, sealedBlob, headerLength, destination[..plaintextLength]);
        return plaintextLength;
    }

    // Everything that can be said before decryption: key id first, then the context.
    private static (int HeaderLength, int PlaintextLength) Authenticate(ReadOnlySpan<byte> key, CipherContext expected, ReadOnlySpan<byte> sealedBlob)
    {
        RequireKey(key);
        ArgumentNullException.ThrowIfNull(expected);
        var (actual, plaintextLength, headerLength) = ParseHeader(sealedBlob);
        if (!string.Equals(actual.KeyId, expected.KeyId, StringComparison.Ordinal))
        {
            throw new ProtocolException(ProtocolRejection.WrongKeyId,
                $"The blob was sealed with key id '{actual.KeyId}' but key id '{expected.KeyId}' was expected for hospital '{expected.HospitalId}': " +
                "the agent and the function hold different current keys; distribute the hospital's current key to both (or let the message name the key id it "
                    + "used).");
        }
        if (actual with { KeyId = expected.KeyId } != expected)
        {
            throw new ProtocolException(ProtocolRejection.Replayed,
                $"The blob was sealed for {actual} but presented as {expected}: it was replayed or moved to another name, and is refused.");
        }
        return (headerLength, plaintextLength);
    }

    // The ciphertext may be the destination itself (in place); on failure the destination is wiped.
    private static void Decrypt(ReadOnlySpan<byte> key, CipherContext expected, ReadOnlySpan<byte> sealedBlob, int headerLength, Span<byte> destination)
    {
        using var aes = new AesGcm(key, TagSize);
        try
        {
            aes.Decrypt(sealedBlob.Slice(headerLength, NonceSize), sealedBlob.Slice(headerLength + NonceSize, destination.Length),
                sealedBlob[^TagSize..], destination, sealedBlob[..headerLength]);
        }
        catch (AuthenticationTagMismatchException e)
        {
            destination.Clear();
            throw new ProtocolException(ProtocolRejection.Tampered,
                $"The blob for {expected} failed authentication: its bytes were altered after sealing (storage corruption or tampering), " +
                $"or the key stored under id '{expected.KeyId}' differs between sender and receiver. The blob is refused.", e);
        }
    }

    /// <summary>
    /// SHA-256 over the blob's header, nonce and tag: what a queue message announces to bind itself to one sealing of one
    /// frame. The GCM tag already authenticates every ciphertext byte under the key, so hashing the ciphertext again (4-8 MiB
    /// a frame) would add nothing: a ciphertext altered under an unchanged tag fails <see cref="Open(ReadOnlySpan{byte}, CipherContext, ReadOnlySpan{byte})"/>
    /// (Tampered), while another sealing of the frame (new random nonce, new tag) or a changed header gives another digest.
    /// </summary>
    public static string SealDigest(ReadOnlySpan<byte> sealedBlob)
    {
        var headerLength = ParseHeader(sealedBlob).HeaderLength;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(sealedBlob[..(headerLength + NonceSize)]);
        sha.AppendData(sealedBlob[^TagSize..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        sha.GetHashAndReset(hash);
        return Convert.ToHexStringLower(hash);
    }

    /// <summary>Plaintext length announced by the header, after checking the blob holds exactly that much.</summary>
    public static int GetPlaintextLength(ReadOnlySpan<byte> sealedBlob) => ParseHeader(sealedBlob).PlaintextLength;

    /// <summary>
    /// The context the header claims (unauthenticated until <see cref="Open(ReadOnlySpan{byte}, CipherContext, ReadOnlySpan{byte})"/>): use it to pick the key.
    /// </summary>
    public static CipherContext ReadContext(ReadOnlySpan<byte> sealedBlob) => ParseHeader(sealedBlob).Context;

    private static int HeaderLength(CipherContext c) => FixedHeaderLength + 3 + c.KeyId.Length + c.RunId.Length + c.HospitalId.Length;

    private static int WriteHeader(Span<byte> destination, CipherContext c, int plaintextLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        destination[4] = CurrentVersion;
        destination[5] = (byte)c.Kind;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], c.Sequence);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], plaintextLength);
        var offset = FixedHeaderLength;
        foreach (var text in (ReadOnlySpan<string>)[c.KeyId, c.RunId, c.HospitalId])
        {
            destination[offset++] = (byte)text.Length;
            offset += Encoding.ASCII.GetBytes(text, destination[offset..]);
        }
        return offset;
    }

    private static (CipherContext Context, int PlaintextLength, int HeaderLength) ParseHeader(ReadOnlySpan<byte> blob)
    {
        if (blob.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(blob) != Magic)
            throw new ProtocolException(ProtocolRejection.Malformed, "These bytes are not a SplitFunctions envelope (no 'SFEN' magic): the blob holds "
                + "something else, or was written by another tool.");
        if (blob.Length < FixedHeaderLength) throw Truncated(blob.Length, "its header");
        if (blob[4] != CurrentVersion)
        {
            throw new ProtocolException(ProtocolRejection.UnknownVersion,
                $"Envelope version {blob[4]} is not supported; this build reads version {CurrentVersion}. Run the same SplitFunctions release at the hospital "
                    + $"and in the cloud.");
        }
        var kind = (PayloadKind)blob[5];
        if (!Enum.IsDefined(kind) || BinaryPrimitives.ReadUInt16LittleEndian(blob[6..]) != 0)
            throw new ProtocolException(ProtocolRejection.Malformed, $"The envelope header is invalid (payload kind code {blob[5]}, reserved bytes must be "
                + $"zero).");
        var sequence = BinaryPrimitives.ReadInt64LittleEndian(blob[8..]);
        var plaintextLength = BinaryPrimitives.ReadInt64LittleEndian(blob[16..]);
        if (sequence < 0 || plaintextLength < 0 || plaintextLength > Array.MaxLength)
            throw new ProtocolException(ProtocolRejection.Malformed, $"The envelope header is invalid (sequence {sequence}, plaintext length "
                + $"{plaintextLength}).");

        var offset = FixedHeaderLength;
        Span<string> texts = ["", "", ""];
        for (var i = 0; i < texts.Length; i++)
        {
            if (offset >= blob.Length || offset + 1 + blob[offset] > blob.Length) throw Truncated(blob.Length, "its header");
            var field = blob.Slice(offset + 1, blob[offset]);
            if (!Ascii.IsValid(field)) throw new ProtocolException(ProtocolRejection.Malformed, "The envelope header holds a non-ASCII name.");
            texts[i] = Encoding.ASCII.GetString(field);
            offset += 1 + field.Length;
        }
        var expectedLength = offset + NonceSize + plaintextLength + TagSize;
        if (blob.Length < expectedLength) throw Truncated(blob.Length, $"the {expectedLength} bytes its header announces");
        if (blob.Length > expectedLength)
            throw new ProtocolException(ProtocolRejection.Malformed, $"The envelope is {blob.Length} bytes, more than the {expectedLength} its header "
                + $"announces: something was appended to the blob.");
        return (new CipherContext(texts[1], texts[2], sequence, kind, texts[0]), (int)plaintextLength, offset);
    }

    private static ProtocolException Truncated(int length, string what) =>
        new(ProtocolRejection.Truncated, $"The envelope is {length} bytes, shorter than {what}: the upload or download was cut short. Send the frame again.");

    private static void RequireKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize) throw new ArgumentException($"Envelope keys are AES-256: {KeySize} bytes, got {key.Length}.", nameof(key));
    }
}

// INTERIM: stands in for core/Protocol (branch `protocol`) until it lands; delete this folder then.
// Names follow the function's use of core/Protocol on main so the agent compiles unchanged against the real one.
using System.Security.Cryptography;
using System.Text;

namespace SplitFunctions.Core.Protocol;

/// <summary>What a sealed payload holds; bound into the associated data.</summary>
public enum PayloadKind
{
    Features,
    Gradients,
    Predictions,
}

/// <summary>Where a sealed payload belongs: a blob opened under another context fails authentication.</summary>
public sealed record EnvelopeContext(string RunId, string HospitalId, long Sequence, PayloadKind Kind, string KeyId)
{
    internal byte[] AssociatedData() => Encoding.UTF8.GetBytes(
        string.Join('\n', "sfe1", RunId, HospitalId, Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), Kind.ToString(), KeyId));
}

/// <summary>AES-256-GCM sealing: magic, random 96-bit nonce, ciphertext, 128-bit tag.</summary>
public static class Envelope
{
    private static readonly byte[] Magic = "SFE1"u8.ToArray();
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public static byte[] Seal(byte[] key, EnvelopeContext context, ReadOnlySpan<byte> plaintext)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(context);
        var output = new byte[Magic.Length + NonceSize + plaintext.Length + TagSize];
        Magic.CopyTo(output, 0);
        var nonce = output.AsSpan(Magic.Length, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(Magic.Length + NonceSize, plaintext.Length), output.AsSpan(output.Length - TagSize), context.AssociatedData());
        return output;
    }

    public static byte[] Open(byte[] key, EnvelopeContext expectedContext, ReadOnlySpan<byte> sealedBytes)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(expectedContext);
        if (sealedBytes.Length < Magic.Length + NonceSize + TagSize || !sealedBytes[..Magic.Length].SequenceEqual(Magic))
        {
            throw new ProtocolException(ProtocolRejection.Truncated, "sealed payload is too short or lacks the envelope header");
        }
        var plaintext = new byte[sealedBytes.Length - Magic.Length - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(sealedBytes.Slice(Magic.Length, NonceSize), sealedBytes.Slice(Magic.Length + NonceSize, plaintext.Length),
                sealedBytes[^TagSize..], plaintext, expectedContext.AssociatedData());
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new ProtocolException(ProtocolRejection.Tampered, $"envelope authentication failed for {expectedContext.Kind} #{expectedContext.Sequence} (wrong key, context or tampered data)", e);
        }
        return plaintext;
    }
}

/// <summary>Why a frame or message was not accepted.</summary>
public enum ProtocolRejection
{
    Malformed,
    Truncated,
    Tampered,
    WrongContext,
    ShapeMismatch,
    NonFinite,
    Oversized,
    UnsupportedVersion,
    UnknownKey,
}

/// <summary>A frame, envelope, key or message that cannot be trusted.</summary>
public sealed class ProtocolException : Exception
{
    public ProtocolException(ProtocolRejection rejection, string message) : base(message) => Rejection = rejection;

    public ProtocolException(ProtocolRejection rejection, string message, Exception inner) : base(message, inner) => Rejection = rejection;

    public ProtocolRejection Rejection { get; }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Core.Contract;

/// <summary>
/// A frame message proves its hospital: `mac` is HMAC-SHA256, under a key derived (HKDF) from that hospital's envelope
/// key `keyId`, over every other field of the message. Anyone may add to `features`, so the function checks it before
/// it touches the run or sends any reply: a message naming hospital B but not made with B's key is poisoned, and B's
/// reply queue never hears of it. Replies carry the MAC of the frame they answer (`answers`), so an agent can take only
/// the reply to the exact message it sent. Every field of <see cref="FrameMessage"/> is in <see cref="CanonicalText"/>;
/// a new field must be added there (and the message version raised).
/// </summary>
public static class MessageAuthentication
{
    /// <summary>HMAC-SHA256 as 64 lowercase hex digits.</summary>
    public const int MacHexLength = 64;

    // Domain separation: the MAC key is never the AES-GCM key itself, and a v2 MAC never verifies another format.
    private static readonly byte[] MacKeyInfo = "splitfn/queue-message-mac/v2"u8.ToArray();

    /// <summary>The message with <see cref="FrameMessage.KeyId"/> set to <paramref name="key"/>'s id and its MAC computed.</summary>
    public static FrameMessage Sign(FrameMessage message, HospitalKey key)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(key);
        if (message.HospitalId != key.HospitalId) throw new ArgumentException($"a message of hospital '{message.HospitalId}' cannot be signed with hospital "
            + $"'{key.HospitalId}''s key", nameof(key));
        if (message.KeyId is not null && message.KeyId != key.KeyId) throw new ArgumentException($"the message names key '{message.KeyId}', not "
            + $"'{key.KeyId}'", nameof(key));
        var withKey = message with { KeyId = key.KeyId, Mac = null };
        return withKey with { Mac = Compute(withKey, key.Key) };
    }

    /// <summary>True when the message's MAC is the one <paramref name="key"/> gives (compared in constant time).</summary>
    public static bool Verify(FrameMessage message, HospitalKey key)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(key);
        if (message.Mac is not { Length: MacHexLength } mac || message.KeyId != key.KeyId || message.HospitalId != key.HospitalId) return false;
        var expected = Encoding.ASCII.GetBytes(Compute(message, key.Key));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(mac));
    }

    /// <summary>The MAC of the message under the hospital key bytes (its own `mac` field is not covered).</summary>
    public static string Compute(FrameMessage message, byte[] hospitalKey)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(hospitalKey);
        var macKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, hospitalKey, 32, salt: [], info: MacKeyInfo);
        try
        {
            return Convert.ToHexStringLower(HMACSHA256.HashData(macKey, Encoding.UTF8.GetBytes(CanonicalText(message))));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(macKey);
        }
    }

    // A reply's MAC key is derived apart from a request's: a request's MAC can never pass for a reply's, or the reverse.
    private static readonly byte[] ReplyMacKeyInfo = "splitfn/reply-mac/v1"u8.ToArray();

    /// <summary>
    /// The reply with its MAC, under <paramref name="key"/>: the key the answered message was made under, so the agent
    /// checks it with the key it signed that message with.
    /// </summary>
    public static ReplyMessage SignReply(ReplyMessage reply, HospitalKey key)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(key);
        if (reply.HospitalId != key.HospitalId) throw new ArgumentException($"a reply to hospital '{reply.HospitalId}' cannot be signed with hospital "
            + $"'{key.HospitalId}''s key", nameof(key));
        var unsigned = reply with { Mac = null };
        return unsigned with { Mac = ComputeReply(unsigned, key.Key) };
    }

    /// <summary>True when the reply's MAC is the one <paramref name="key"/> gives over its other fields (constant-time compare).</summary>
    public static bool VerifyReply(ReplyMessage reply, HospitalKey key)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(key);
        if (reply.Mac is not { Length: MacHexLength } mac || reply.HospitalId != key.HospitalId) return false;
        var expected = Encoding.ASCII.GetBytes(ComputeReply(reply, key.Key));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(mac));
    }

    /// <summary>
    /// The MAC of a reply: HMAC-SHA256 over its canonical JSON without `mac` (the codec's own serialization: fixed field
    /// order, no whitespace, absent fields left out), so every field, including any added later, is covered.
    /// </summary>
    public static string ComputeReply(ReplyMessage reply, byte[] hospitalKey)
    {
        ArgumentNullException.ThrowIfNull(reply);
        ArgumentNullException.ThrowIfNull(hospitalKey);
        var canonical = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(reply with { Mac = null }, ProtocolJsonContext.Default.ReplyMessage);
        var macKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, hospitalKey, 32, salt: [], info: ReplyMacKeyInfo);
        try
        {
            return Convert.ToHexStringLower(HMACSHA256.HashData(macKey, canonical));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(macKey);
        }
    }

    /// <summary>
    /// One line per field, `name=value` or `name!` when absent. Unambiguous because validated fields never hold a line
    /// break; the MAC is checked only after <see cref="MessageCodec.Validate(FrameMessage)"/>.
    /// </summary>
    public static string CanonicalText(FrameMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var text = new StringBuilder("splitfn-frame\n");
        void Field(string name, string? value) => text.Append(name).Append(value is null ? "!" : "=" + value).Append('\n');
        string? Number(long? value) => value?.ToString(CultureInfo.InvariantCulture);
        Field("v", Number(m.Version));
        Field("run", m.RunId);
        Field("hospital", m.HospitalId);
        Field("seq", Number(m.Sequence));
        Field("kind", m.Kind.ToString().ToLowerInvariant());
        Field("blob", m.Blob);
        Field("length", Number(m.Length));
        Field("sha256", m.Sha256);
        Field("replyQueue", m.ReplyQueue);
        Field("keyId", m.KeyId);
        Field("epoch", Number(m.Epoch));
        Field("batch", Number(m.Batch));
        Field("chunkCount", Number(m.ChunkCount));
        // Only when present, so the MAC of a message without it (every message of earlier releases) is unchanged.
        if (m.Inline is not null) Field("inline", m.Inline);
        return text.ToString();
    }
}

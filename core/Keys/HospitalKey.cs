using SplitFunctions.Core.Contract;

namespace SplitFunctions.Core.Keys;

/// <summary>One hospital's AES-256 envelope key and the id that names it (rotation adds ids, never reuses one).</summary>
public sealed record HospitalKey(string HospitalId, string KeyId, byte[] Key)
{
    /// <summary>Longest key id: room for a Key Vault secret version (32 hex) and local date-based ids.</summary>
    public const int MaxKeyIdLength = 64;

    /// <summary>True for 1-64 lowercase letters, digits and hyphens, starting with a letter or digit.</summary>
    public static bool IsValidKeyId(string? keyId)
    {
        if (string.IsNullOrEmpty(keyId) || keyId.Length > MaxKeyIdLength || keyId[0] == '-') return false;
        foreach (var c in keyId)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-')) return false;
        }
        return true;
    }

    /// <summary>Returns the id, or throws with the rule it broke.</summary>
    public static string ValidateKeyId(string? keyId) => IsValidKeyId(keyId)
        ? keyId!
        : throw new ArgumentException($"Key id '{keyId}' is invalid: use 1-{MaxKeyIdLength} lowercase letters, digits and hyphens, starting with a letter or "
            + $"digit.", nameof(keyId));

    /// <summary>A new key id: `k&lt;UTC yyyyMMddHHmmss&gt;-&lt;6 hex&gt;`, unique without coordination (rotation never reuses an id).</summary>
    public static string NewKeyId() =>
        "k" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) + "-" +
        Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3));

    // The key bytes never appear in logs.
    public override string ToString() => $"HospitalKey {{ HospitalId = {HospitalId}, KeyId = {KeyId} }}";
}

/// <summary>Finds a hospital's envelope key by id; a null id asks for the hospital's current key.</summary>
public interface IKeyProvider
{
    /// <summary>Throws <see cref="ProtocolException"/> (<see cref="ProtocolRejection.UnknownKey"/>) when no such key exists.</summary>
    ValueTask<HospitalKey> GetKeyAsync(string hospitalId, string? keyId, CancellationToken cancellationToken = default);
}

/// <summary>A key store that exists but cannot be used safely (loose file permissions, a damaged key): the operator must fix it.</summary>
public sealed class KeyStoreException(string message, Exception? innerException = null) : Exception(message, innerException);

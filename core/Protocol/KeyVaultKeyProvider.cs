using System.Collections.Concurrent;
using System.Security.Cryptography;
using Azure;
using Azure.Security.KeyVault.Secrets;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Protocol;

/// <summary>
/// Envelope keys in Azure Key Vault secrets. One secret per hospital, named <c>splitfn-hospital-&lt;hospital&gt;</c>; its value
/// is the base64 of the 32-byte key and each secret version is one key id (the version's 32 hex digits), so rotation
/// is "set a new version" and a null key id means the latest version. Readers need the Key Vault Secrets User role.
/// Versioned keys are cached for the process lifetime (they never change); the current key for <see cref="CurrentKeyCacheTime"/>.
/// </summary>
public sealed class KeyVaultKeyProvider(SecretClient client) : IKeyProvider
{
    /// <summary>Secret content type marking our keys.</summary>
    public const string ContentType = "application/vnd.splitfunctions.aes256-key+base64";

    private readonly ConcurrentDictionary<(string Hospital, string KeyId), HospitalKey> _versions = new();
    private readonly ConcurrentDictionary<string, (HospitalKey Key, DateTimeOffset Until)> _current = new();

    /// <summary>How long the current key id is trusted before Key Vault is asked again (after a rotation).</summary>
    public TimeSpan CurrentKeyCacheTime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Secret name holding a hospital's keys.</summary>
    public static string SecretName(string hospitalId) => "splitfn-hospital-" + StorageNames.ValidateHospitalId(hospitalId);

    public async ValueTask<HospitalKey> GetKeyAsync(string hospitalId, string? keyId, CancellationToken cancellationToken = default)
    {
        if (keyId is not null && _versions.TryGetValue((hospitalId, HospitalKey.ValidateKeyId(keyId)), out var cached)) return cached;
        if (keyId is null && _current.TryGetValue(hospitalId, out var current) && current.Until > DateTimeOffset.UtcNow) return current.Key;

        KeyVaultSecret secret;
        try
        {
            secret = (await client.GetSecretAsync(SecretName(hospitalId), keyId, cancellationToken).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new ProtocolException(ProtocolRejection.UnknownKey,
                $"Key Vault {client.VaultUri} has no secret '{SecretName(hospitalId)}'{(keyId is null ? "" : $" version '{keyId}'")}: create the hospital's key (KeyVaultKeyProvider.CreateKeyAsync) or check the key id.", e);
        }
        var key = Parse(hospitalId, secret);
        _versions[(hospitalId, key.KeyId)] = key;
        if (keyId is null) _current[hospitalId] = (key, DateTimeOffset.UtcNow + CurrentKeyCacheTime);
        return key;
    }

    /// <summary>Adds a fresh random key as a new secret version; it becomes the hospital's current key.</summary>
    public async Task<HospitalKey> CreateKeyAsync(string hospitalId, CancellationToken cancellationToken = default)
    {
        var secret = new KeyVaultSecret(SecretName(hospitalId), Convert.ToBase64String(RandomNumberGenerator.GetBytes(Envelope.KeySize)));
        secret.Properties.ContentType = ContentType;
        var key = Parse(hospitalId, (await client.SetSecretAsync(secret, cancellationToken).ConfigureAwait(false)).Value);
        _current.TryRemove(hospitalId, out _);
        return key;
    }

    private static HospitalKey Parse(string hospitalId, KeyVaultSecret secret)
    {
        byte[]? key = null;
        try
        {
            key = Convert.FromBase64String(secret.Value ?? "");
        }
        catch (FormatException)
        {
        }
        if (key is not { Length: Envelope.KeySize })
        {
            throw new KeyStoreException(
                $"Key Vault secret '{secret.Name}' version '{secret.Properties.Version}' is not a base64 {Envelope.KeySize}-byte key: set a new version with a valid key.");
        }
        return new HospitalKey(hospitalId, secret.Properties.Version, key);
    }
}

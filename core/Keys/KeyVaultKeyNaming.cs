using Azure.Security.KeyVault.Secrets;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Keys;

/// <summary>
/// How a hospital's envelope keys are stored in Key Vault, exactly as docs/deploy.md (onboarding, step 2) tells the
/// operator to create them: one secret per key, named <c>hospital-&lt;hospital&gt;--&lt;keyId&gt;</c>, content type
/// <see cref="ContentType"/>, value the base64 of 32 random bytes, tags <c>hospital</c> and <c>keyId</c>. Hospital ids
/// never contain <c>--</c>, so a name splits at its first <c>--</c>; rotation adds a secret with a new key id and
/// disables the old one.
/// </summary>
public static class KeyVaultKeyNaming
{
    /// <summary>The content type the operator sets (`az keyvault secret set --content-type`); other secrets are never read as keys.</summary>
    public const string ContentType = "splitfunctions-kek;v1";

    private const string Prefix = "hospital-";

    private const string Separator = "--";

    /// <summary>`hospital-&lt;hospital&gt;--&lt;keyId&gt;`.</summary>
    public static string SecretName(string hospitalId, string keyId) =>
        Prefix + StorageNames.ValidateHospitalId(hospitalId) + Separator + HospitalKey.ValidateKeyId(keyId);

    /// <summary>Splits a secret name into hospital and key id; false for names that are not hospital keys.</summary>
    public static bool TryParseSecretName(string? name, out string hospitalId, out string keyId)
    {
        hospitalId = keyId = "";
        if (name is null || !name.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        var rest = name[Prefix.Length..];
        var split = rest.IndexOf(Separator, StringComparison.Ordinal);
        if (split <= 0) return false;
        var hospital = rest[..split];
        var key = rest[(split + Separator.Length)..];
        if (!StorageNames.IsValidHospitalId(hospital) || !HospitalKey.IsValidKeyId(key)) return false;
        (hospitalId, keyId) = (hospital, key);
        return true;
    }

    /// <summary>The key id of the hospital's newest enabled key secret (by creation time), or null when it has none.</summary>
    public static string? CurrentKeyId(string hospitalId, IEnumerable<SecretProperties> secrets)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        string? current = null;
        DateTimeOffset newest = default;
        foreach (var properties in secrets)
        {
            if (properties.Enabled == false || properties.ContentType != ContentType) continue;
            if (!TryParseSecretName(properties.Name, out var hospital, out var keyId) || hospital != hospitalId) continue;
            var created = properties.CreatedOn ?? DateTimeOffset.MinValue;
            if (current is null || created > newest) (current, newest) = (keyId, created);
        }
        return current;
    }

    /// <summary>The key a secret holds; throws <see cref="KeyStoreException"/> naming the field to fix when the secret is not as documented.</summary>
    public static HospitalKey ToKey(string hospitalId, string keyId, KeyVaultSecret secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var expectedName = SecretName(hospitalId, keyId);
        if (!string.Equals(secret.Name, expectedName, StringComparison.OrdinalIgnoreCase))
            throw new KeyStoreException($"Key Vault secret '{secret.Name}' was read for '{expectedName}': the key store asked for the wrong secret.");
        if (secret.Properties.ContentType != ContentType)
        {
            throw new KeyStoreException(
                $"Key Vault secret '{secret.Name}' has content type '{secret.Properties.ContentType}', not '{ContentType}': set it as docs/deploy.md shows " +
                $"(az keyvault secret set ... --content-type \"{ContentType}\").");
        }
        var key = new byte[FrameCipher.KeySize];
        if (!Convert.TryFromBase64String((secret.Value ?? "").Trim(), key, out var written) || written != FrameCipher.KeySize)
        {
            throw new KeyStoreException(
                $"Key Vault secret '{secret.Name}' is not the base64 of {FrameCipher.KeySize} bytes: create the key again with `openssl rand -base64 32` as "
                    + $"docs/deploy.md shows, under a new key id.");
        }
        return new HospitalKey(hospitalId, keyId, key);
    }
}

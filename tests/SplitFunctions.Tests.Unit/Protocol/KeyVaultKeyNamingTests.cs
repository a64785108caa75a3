using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Azure.Security.KeyVault.Secrets;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Tests.Protocol;

/// <summary>
/// The Key Vault key store against what docs/deploy.md tells an operator to create: the name, content type and value
/// of `az keyvault secret set` in onboarding step 2 are read from the page itself, turned into the SDK's own model types
/// (SecretModelFactory) and handed to the provider's naming and parsing. No Key Vault runs here, so the HTTP exchange
/// with the vault itself is not tested.
/// </summary>
public sealed partial class KeyVaultKeyNamingTests
{
    private const string Hospital = "st-marys";
    private const string KeyId = "k20261201";

    private static readonly string Deploy = File.ReadAllText(Path.Combine(RepoRoot.Path, "docs", "deploy.md"));

    [GeneratedRegex("""az keyvault secret set --vault-name "\$KV" --name "(?<name>[^"]+)" --file "\$KEYFILE" \\\s*--content-type "(?<type>[^"]+)" --tags hospital=<h> keyId="\$KEY_ID"\s""")]
    private static partial Regex SetCommand();

    private static (string Name, string ContentType) DocumentedSecret()
    {
        var match = SetCommand().Match(Deploy);
        match.Success.Should().BeTrue("docs/deploy.md shows the `az keyvault secret set` command of onboarding step 2");
        Deploy.Should().Contain("KEY_ID=k$(date -u +%Y%m%d)").And.Contain("openssl rand -base64 32 | tr -d '\\n' > \"$KEYFILE\"");
        return (match.Groups["name"].Value.Replace("<h>", Hospital, StringComparison.Ordinal).Replace("$KEY_ID", KeyId, StringComparison.Ordinal),
                match.Groups["type"].Value);
    }

    // What `openssl rand -base64 32 | tr -d '\n'` writes: the base64 of 32 random bytes, no newline.
    private static (byte[] Bytes, string Value) OperatorKey()
    {
        var bytes = RandomNumberGenerator.GetBytes(32);
        return (bytes, Convert.ToBase64String(bytes));
    }

    private static KeyVaultSecret Secret(string name, string? contentType, string value, bool enabled = true, DateTimeOffset? createdOn = null)
    {
        var properties = SecretModelFactory.SecretProperties(name: name, version: Guid.NewGuid().ToString("N"), createdOn: createdOn ?? DateTimeOffset.UtcNow);
        properties.ContentType = contentType;
        properties.Enabled = enabled;
        return SecretModelFactory.KeyVaultSecret(properties, value);
    }

    [Fact]
    public void The_provider_reads_the_secret_name_and_content_type_the_docs_tell_the_operator_to_create()
    {
        var (name, contentType) = DocumentedSecret();
        name.Should().Be("hospital-st-marys--k20261201");
        KeyVaultKeyNaming.SecretName(Hospital, KeyId).Should().Be(name);
        KeyVaultKeyNaming.ContentType.Should().Be(contentType);

        var (bytes, value) = OperatorKey();
        var key = KeyVaultKeyNaming.ToKey(Hospital, KeyId, Secret(name, contentType, value));
        key.HospitalId.Should().Be(Hospital);
        key.KeyId.Should().Be(KeyId, "the key id is the one in the secret's name, the one frames carry");
        key.Key.Should().Equal(bytes);

        KeyVaultKeyNaming.TryParseSecretName(name, out var hospital, out var keyId).Should().BeTrue();
        (hospital, keyId).Should().Be((Hospital, KeyId));
    }

    [Fact]
    public void The_rotation_steps_name_the_same_secrets()
    {
        Deploy.Should().Contain("`hospital-<h>--<newKeyId>`");
        Deploy.Should().Contain("--name \"hospital-<h>--<oldKeyId>\" --enabled false");
        KeyVaultKeyNaming.SecretName(Hospital, "k20270101").Should().Be("hospital-st-marys--k20270101");
    }

    [Fact]
    public void The_current_key_is_the_newest_enabled_documented_secret_of_that_hospital_only()
    {
        var (_, contentType) = DocumentedSecret();
        var (_, value) = OperatorKey();
        var day = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        var secrets = new[]
        {
            Secret("hospital-st-marys--k20261201", contentType, value, createdOn: day),
            Secret("hospital-st-marys--k20261215", contentType, value, createdOn: day.AddDays(14)),
            Secret("hospital-st-marys--k20270101", contentType, value, enabled: false, createdOn: day.AddDays(31)), // disabled: compromised
            Secret("hospital-st-marys--k20270102", "text/plain", value, createdOn: day.AddDays(32)), // not a key
            Secret("hospital-st-marys-2--k20270103", contentType, value, createdOn: day.AddDays(33)), // another hospital sharing a prefix
            Secret("splitfn-hospital-st-marys", contentType, value, createdOn: day.AddDays(34)), // the old naming is not read
        }.Select(s => s.Properties);
        KeyVaultKeyNaming.CurrentKeyId(Hospital, secrets).Should().Be("k20261215");
        KeyVaultKeyNaming.CurrentKeyId("st-marys-2", secrets).Should().Be("k20270103");
        KeyVaultKeyNaming.CurrentKeyId("elsewhere", secrets).Should().BeNull();
    }

    [Fact]
    public void A_secret_not_made_as_documented_is_refused_naming_what_to_fix()
    {
        var (name, contentType) = DocumentedSecret();
        var (_, value) = OperatorKey();

        var noType = () => KeyVaultKeyNaming.ToKey(Hospital, KeyId, Secret(name, null, value));
        noType.Should().Throw<KeyStoreException>().WithMessage($"*content type*--content-type \"{contentType}\"*");

        var shortKey = () => KeyVaultKeyNaming.ToKey(Hospital, KeyId, Secret(name, contentType, Convert.ToBase64String(new byte[16])));
        shortKey.Should().Throw<KeyStoreException>().WithMessage("*not the base64 of 32 bytes*openssl rand -base64 32*");

        var hexKey = () => KeyVaultKeyNaming.ToKey(Hospital, KeyId, Secret(name, contentType, Convert.ToHexString(new byte[32])));
        hexKey.Should().Throw<KeyStoreException>();

        var otherSecret = () => KeyVaultKeyNaming.ToKey(Hospital, KeyId, Secret("hospital-beta--k1", contentType, value));
        otherSecret.Should().Throw<KeyStoreException>().WithMessage("*wrong secret*");

        foreach (var bad in new[] { "hospital-st-marys", "hospital---k1", "hospital-St-Marys--k1", "hospital-st-marys--", "hospital-st-marys--K1",
            "splitfn-hospital-st-marys" })
        {
            KeyVaultKeyNaming.TryParseSecretName(bad, out _, out _).Should().BeFalse(bad);
        }
        var badHospital = () => KeyVaultKeyNaming.SecretName("St Marys", KeyId);
        badHospital.Should().Throw<ArgumentException>();
        var badKeyId = () => KeyVaultKeyNaming.SecretName(Hospital, "K 1");
        badKeyId.Should().Throw<ArgumentException>();
    }
}

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace SplitFunctions.Core.Storage;

/// <summary>What a container SAS allows.</summary>
[Flags]
public enum ContainerSasPermissions
{
    None = 0,
    Read = 1,
    Add = 2,
    Create = 4,
    Write = 8,
    Delete = 16,
    List = 32,
    All = Read | Add | Create | Write | Delete | List,
}

/// <summary>What a queue SAS allows.</summary>
[Flags]
public enum QueueSasPermissions
{
    None = 0,
    Read = 1,
    Add = 2,
    Update = 4,
    Process = 8,
}

/// <summary>Service SAS tokens (signed with an account key) and user delegation SAS tokens (signed with a key from Microsoft Entra ID), scoped to one container or queue.</summary>
public static class SasBuilder
{
    /// <summary>The signed version (sv) of every SAS made here; its string-to-sign layout is the 2020-12-06 one.</summary>
    public const string SasVersion = StorageClientOptions.DefaultServiceVersion;

    /// <summary>A service SAS for one container, signed with the account key; returns the query string without '?'.</summary>
    public static string ContainerSas(StorageSharedKeyCredential credential, string containerName, ContainerSasPermissions permissions, DateTimeOffset expiresOn, DateTimeOffset? startsOn = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var sp = Permissions(permissions);
        var st = startsOn is { } s ? Format(s) : string.Empty;
        var se = Format(expiresOn);
        var resource = $"/blob/{credential.AccountName}/{containerName}";
        var stringToSign = string.Join('\n', sp, st, se, resource, string.Empty, string.Empty, string.Empty, SasVersion, "c",
            string.Empty, string.Empty, string.Empty, string.Empty, string.Empty, string.Empty, string.Empty);
        return Query(("sv", SasVersion), ("st", st), ("se", se), ("sr", "c"), ("sp", sp), ("sig", credential.ComputeHmacSha256(stringToSign)));
    }

    /// <summary>A user delegation SAS for one container (for connections that use Microsoft Entra tokens, where there is no account key).</summary>
    public static string ContainerUserDelegationSas(UserDelegationKey key, string accountName, string containerName, ContainerSasPermissions permissions, DateTimeOffset expiresOn, DateTimeOffset? startsOn = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        var sp = Permissions(permissions);
        var st = startsOn is { } s ? Format(s) : string.Empty;
        var se = Format(expiresOn);
        var skt = Format(key.SignedStartsOn);
        var ske = Format(key.SignedExpiresOn);
        var resource = $"/blob/{accountName}/{containerName}";
        var stringToSign = string.Join('\n',
            sp, st, se, resource, key.SignedObjectId, key.SignedTenantId, skt, ske, key.SignedService, key.SignedVersion,
            string.Empty, string.Empty, string.Empty, // saoid, suoid, scid
            string.Empty, string.Empty, SasVersion, "c", // sip, spr, sv, sr
            string.Empty, string.Empty, // snapshot, ses
            string.Empty, string.Empty, string.Empty, string.Empty, string.Empty);
        var signature = Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(
            Convert.FromBase64String(key.Value), Encoding.UTF8.GetBytes(stringToSign)));
        return Query(("sv", SasVersion), ("st", st), ("se", se), ("sr", "c"), ("sp", sp),
            ("skoid", key.SignedObjectId), ("sktid", key.SignedTenantId), ("skt", skt), ("ske", ske),
            ("sks", key.SignedService), ("skv", key.SignedVersion), ("sig", signature));
    }

    /// <summary>A service SAS for one queue, signed with the account key; returns the query string without '?'.</summary>
    public static string QueueSas(StorageSharedKeyCredential credential, string queueName, QueueSasPermissions permissions, DateTimeOffset expiresOn, DateTimeOffset? startsOn = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var sp = Permissions(permissions);
        var st = startsOn is { } s ? Format(s) : string.Empty;
        var se = Format(expiresOn);
        var resource = $"/queue/{credential.AccountName}/{queueName}";
        var stringToSign = string.Join('\n', sp, st, se, resource, string.Empty, string.Empty, string.Empty, SasVersion);
        return Query(("sv", SasVersion), ("st", st), ("se", se), ("sp", sp), ("sig", credential.ComputeHmacSha256(stringToSign)));
    }

    private static string Permissions(ContainerSasPermissions p)
    {
        if (p == ContainerSasPermissions.None) throw new ArgumentException("A SAS needs at least one permission.", nameof(p));
        var sb = new StringBuilder();
        if (p.HasFlag(ContainerSasPermissions.Read)) sb.Append('r');
        if (p.HasFlag(ContainerSasPermissions.Add)) sb.Append('a');
        if (p.HasFlag(ContainerSasPermissions.Create)) sb.Append('c');
        if (p.HasFlag(ContainerSasPermissions.Write)) sb.Append('w');
        if (p.HasFlag(ContainerSasPermissions.Delete)) sb.Append('d');
        if (p.HasFlag(ContainerSasPermissions.List)) sb.Append('l');
        return sb.ToString();
    }

    private static string Permissions(QueueSasPermissions p)
    {
        if (p == QueueSasPermissions.None) throw new ArgumentException("A SAS needs at least one permission.", nameof(p));
        var sb = new StringBuilder();
        if (p.HasFlag(QueueSasPermissions.Read)) sb.Append('r');
        if (p.HasFlag(QueueSasPermissions.Add)) sb.Append('a');
        if (p.HasFlag(QueueSasPermissions.Update)) sb.Append('u');
        if (p.HasFlag(QueueSasPermissions.Process)) sb.Append('p');
        return sb.ToString();
    }

    private static string Format(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    private static string Query(params (string Name, string Value)[] parts) =>
        string.Join('&', parts.Where(p => p.Value.Length > 0).Select(p => p.Name + "=" + UrlEncoder.Default.Encode(p.Value)));
}

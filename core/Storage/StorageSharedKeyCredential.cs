namespace SplitFunctions.Core.Storage;

/// <summary>A storage account name and key: signs requests (Shared Key) and service SAS tokens.</summary>
public sealed class StorageSharedKeyCredential
{
    private readonly byte[] _key;

    public StorageSharedKeyCredential(string accountName, string accountKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(accountName);
        ArgumentException.ThrowIfNullOrEmpty(accountKey);
        AccountName = accountName;
        try
        {
            _key = Convert.FromBase64String(accountKey);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(
                $"The account key of storage account '{accountName}' is not valid base64: copy it again from the portal (Access keys) or the connection string.",
                nameof(accountKey), e);
        }
    }

    /// <summary>The storage account the key belongs to.</summary>
    public string AccountName { get; }

    /// <summary>Base64 HMAC-SHA256 of <paramref name="stringToSign"/> under the account key.</summary>
    public string ComputeHmacSha256(string stringToSign) =>
        Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(_key, System.Text.Encoding.UTF8.GetBytes(stringToSign)));
}

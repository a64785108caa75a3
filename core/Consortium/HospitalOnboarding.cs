using System.Security.Cryptography;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>What `hospital add` is asked for.</summary>
public sealed record OnboardingRequest
{
    public required string HospitalId { get; init; }
    public HospitalAccessKind Access { get; init; } = HospitalAccessKind.Sas;
    /// <summary>How long the SAS are valid (SAS access).</summary>
    public TimeSpan SasLifetime { get; init; } = TimeSpan.FromDays(30);
    /// <summary>Identity access: the service principal's object id, its tenant, app (client) id and the certificate file name at the hospital.</summary>
    public string? PrincipalId { get; init; }
    public string? TenantId { get; init; }
    public string? ClientId { get; init; }
    public string? Certificate { get; init; }
}

/// <summary>
/// The operator's side of a hospital's membership: add (storage, key, credentials), rotate its key, revoke it. Storage
/// writes go through <see cref="StorageConnection"/>, keys to where the function reads them (<see cref="IFunctionKeys"/>).
/// </summary>
public sealed class HospitalOnboarding(StorageConnection storage, IFunctionKeys functionKeys)
{
    private readonly HospitalRegistry registry = new(storage);
    private readonly HospitalAccess access = new(storage);

    public HospitalRegistry Registry => registry;

    /// <summary>Creates container `h-&lt;id&gt;`, queue `replies-&lt;id&gt;` and the shared queues, the hospital's key, and its credentials.</summary>
    public async Task<OnboardingPackage> AddAsync(OnboardingRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var id = ValidId(request.HospitalId);
        if (request.Access == HospitalAccessKind.Identity
            && (string.IsNullOrWhiteSpace(request.PrincipalId) || string.IsNullOrWhiteSpace(request.TenantId) || string.IsNullOrWhiteSpace(request.ClientId)))
        {
            throw new ConsortiumException(ConsortiumError.Invalid, "identity access needs --principal-id, --tenant-id and --client-id of the hospital's "
                + "service principal (docs/operator.md, Azure)");
        }
        if (request.Access == HospitalAccessKind.Sas && (request.SasLifetime <= TimeSpan.Zero || request.SasLifetime > TimeSpan.FromDays(365)))
        {
            throw new ConsortiumException(ConsortiumError.Invalid, $"SAS lifetime {request.SasLifetime.TotalDays:0.##} days is out of range (more than 0, at "
                + $"most 365)");
        }
        if (request.Access == HospitalAccessKind.Sas && storage.SharedKey is null && storage.TokenCredential is null)
        {
            throw new ConsortiumException(ConsortiumError.Invalid, "the storage connection is a SAS connection string, which cannot mint SAS for hospitals: "
                + "use the account key or a Microsoft Entra identity");
        }
        if (await registry.GetAsync(id, ct).ConfigureAwait(false) is { IsRevoked: false })
        {
            throw new ConsortiumException(ConsortiumError.AlreadyExists, $"hospital '{id}' is already onboarded: use `hospital rotate-key {id}` for a new key "
                + $"and SAS, or `hospital revoke {id}` first");
        }

        await storage.GetBlobContainerClient(StorageNames.HospitalContainer(id)).CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        await storage.GetQueueClient(StorageNames.RepliesQueue(id)).CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        foreach (var shared in new[] { StorageNames.FeaturesQueue, StorageNames.FeaturesPoisonQueue, StorageNames.FeaturesRejectionsQueue })
        {
            await storage.GetQueueClient(shared).CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        }
        var key = await IssueKeyAsync(id, ct).ConfigureAwait(false);
        var record = new HospitalRecord
        {
            HospitalId = id,
            Access = request.Access,
            PrincipalId = request.PrincipalId,
            KeyIds = [key.KeyId],
            AddedAt = DateTimeOffset.UtcNow,
        };
        return await PackageAsync(record, key, request, ct).ConfigureAwait(false);
    }

    /// <summary>A new current key (and, for SAS access, new SAS); the old keys stay valid unless <paramref name="retireOld"/>.</summary>
    public async Task<OnboardingPackage> RotateKeyAsync(string hospitalId, bool retireOld, TimeSpan sasLifetime, string? certificate = null,
        CancellationToken ct = default)
    {
        var record = await ActiveAsync(hospitalId, ct).ConfigureAwait(false);
        var key = await IssueKeyAsync(record.HospitalId, ct).ConfigureAwait(false);
        if (retireOld)
        {
            foreach (var old in record.KeyIds) await functionKeys.RetireAsync(record.HospitalId, old, ct).ConfigureAwait(false);
        }
        var keyIds = retireOld ? new List<string> { key.KeyId } : [.. record.KeyIds, key.KeyId];
        var request = new OnboardingRequest
        {
            HospitalId = record.HospitalId,
            Access = record.Access,
            SasLifetime = sasLifetime,
            PrincipalId = record.PrincipalId,
            Certificate = certificate
        };
        return await PackageAsync(record with { KeyIds = keyIds }, key, request, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Retires every key of the hospital (the function refuses its frames) and ends its SAS (stored access policies removed);
    /// its data stays. Returns the record and, for identity access, the role assignments to delete.
    /// </summary>
    public async Task<(HospitalRecord Record, IReadOnlyList<string> RoleRemovals)> RevokeAsync(string hospitalId, CancellationToken ct = default)
    {
        var record = await ActiveAsync(hospitalId, ct).ConfigureAwait(false);
        foreach (var keyId in record.KeyIds) await functionKeys.RetireAsync(record.HospitalId, keyId, ct).ConfigureAwait(false);
        await access.RevokeAsync(record.HospitalId, ct).ConfigureAwait(false);
        var revoked = record with { RevokedAt = DateTimeOffset.UtcNow };
        await registry.SaveAsync(revoked, ct).ConfigureAwait(false);
        IReadOnlyList<string> removals = record.Access == HospitalAccessKind.Identity
            ? [$"az role assignment delete --assignee \"{record.PrincipalId}\" --scope \"$SA_ID\"  # SA_ID=$(az storage account show -n {storage.AccountName} "
                + $"--query id -o tsv); also remove it from hospitalPrincipals"]
            : [];
        return (revoked, removals);
    }

    private async Task<HospitalRecord> ActiveAsync(string hospitalId, CancellationToken ct)
    {
        var id = ValidId(hospitalId);
        var record = await registry.GetAsync(id, ct).ConfigureAwait(false)
                     ?? throw new ConsortiumException(ConsortiumError.NotFound, $"hospital '{id}' was never onboarded: `hospital add {id}` first (`hospital "
                         + $"list` shows the hospitals)");
        return record.IsRevoked
            ? throw new ConsortiumException(ConsortiumError.Revoked, $"hospital '{id}' was revoked at {record.RevokedAt:u}: `hospital add {id}` onboards it "
                + $"again with a new key and credentials")
            : record;
    }

    private async Task<HospitalKey> IssueKeyAsync(string hospitalId, CancellationToken ct)
    {
        var key = new HospitalKey(hospitalId, HospitalKey.NewKeyId(), RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
        await functionKeys.StoreAsync(key, ct).ConfigureAwait(false);
        return key;
    }

    private async Task<OnboardingPackage> PackageAsync(HospitalRecord record, HospitalKey key, OnboardingRequest request, CancellationToken ct)
    {
        OnboardingPackage package;
        if (record.Access == HospitalAccessKind.Sas)
        {
            var credentials = await access.MintRevocableAsync(record.HospitalId, request.SasLifetime, ct).ConfigureAwait(false);
            record = record with { SasExpiresOn = credentials.ExpiresOn };
            package = new OnboardingPackage(record, key, credentials, OnboardingPackage.SasArguments(record.HospitalId, credentials, key.KeyId), []);
        }
        else
        {
            var arguments = OnboardingPackage.IdentityArguments(record.HospitalId, storage, request.TenantId ?? "<tenant-id>", request.ClientId
                ?? "<client-id>",
                request.Certificate ?? $"splitfn-{record.HospitalId}.pem", key.KeyId);
            package = new OnboardingPackage(record, key, null, arguments, RoleAssignments(record.HospitalId, record.PrincipalId!));
        }
        await registry.SaveAsync(record, ct).ConfigureAwait(false);
        return package;
    }

    /// <summary>The three role assignments of `infra-bicep/modules/hospital-access.bicep`, as `az` commands.</summary>
    private List<string> RoleAssignments(string hospitalId, string principalId)
    {
        string Assign(string role, string scope) =>
            $"az role assignment create --assignee-object-id \"{principalId}\" --assignee-principal-type ServicePrincipal --role \"{role}\" --scope "
                + $"\"$SA_ID/{scope}\"";
        return
        [
            $"SA_ID=$(az storage account show -n {storage.AccountName} --query id -o tsv)",
            Assign("Storage Blob Data Contributor", $"blobServices/default/containers/{StorageNames.HospitalContainer(hospitalId)}"),
            Assign("Storage Queue Data Message Processor", $"queueServices/default/queues/{StorageNames.RepliesQueue(hospitalId)}"),
            Assign("Storage Queue Data Message Sender", $"queueServices/default/queues/{StorageNames.FeaturesQueue}"),
            $"# or in Bicep: hospitalPrincipals: [ ..., {{ hospitalId: '{hospitalId}', principalId: '{principalId}' }} ] and deploy phase 2",
        ];
    }

    private static string ValidId(string hospitalId)
    {
        try
        {
            return StorageNames.ValidateHospitalId(hospitalId);
        }
        catch (ArgumentException e)
        {
            throw new ConsortiumException(ConsortiumError.Invalid, e.Message.Split(" (Parameter", 2)[0], e);
        }
    }
}

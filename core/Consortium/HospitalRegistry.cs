using Azure;
using Azure.Storage.Blobs.Models;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>The operator's list of hospitals in container `consortium` (<see cref="HospitalRecord"/>).</summary>
public sealed class HospitalRegistry(StorageConnection storage)
{
    /// <summary>Container of the operator's records; agents' credentials never reach it.</summary>
    public const string Container = "consortium";

    public static string RecordBlob(string hospitalId) => $"hospitals/{StorageNames.ValidateHospitalId(hospitalId)}.json";

    /// <summary>The hospital's record, or null when it was never added.</summary>
    public async Task<HospitalRecord?> GetAsync(string hospitalId, CancellationToken ct = default)
    {
        try
        {
            var content = (await storage.GetBlobContainerClient(Container).GetBlobClient(RecordBlob(hospitalId)).DownloadContentAsync(ct)
                .ConfigureAwait(false)).Value.Content;
            return HospitalRecord.Parse(content.ToMemory().Span);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public async Task SaveAsync(HospitalRecord record, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        var container = storage.GetBlobContainerClient(Container);
        await container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        await container.GetBlobClient(RecordBlob(record.HospitalId)).UploadAsync(BinaryData.FromBytes(record.ToJson()), overwrite: true, ct)
            .ConfigureAwait(false);
    }

    /// <summary>Every hospital record, by id.</summary>
    public async Task<IReadOnlyList<HospitalRecord>> ListAsync(CancellationToken ct = default)
    {
        var container = storage.GetBlobContainerClient(Container);
        var records = new List<HospitalRecord>();
        if (!await container.ExistsAsync(ct).ConfigureAwait(false)) return records;
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "hospitals/", ct).ConfigureAwait(false))
        {
            var content = (await container.GetBlobClient(item.Name).DownloadContentAsync(ct).ConfigureAwait(false)).Value.Content;
            records.Add(HospitalRecord.Parse(content.ToMemory().Span));
        }
        return records;
    }
}

using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.Core.Consortium;

/// <summary>
/// Creates what a run needs in storage (the operator's side, run once per run): containers `runs` and `h-&lt;hospital&gt;`,
/// queues `features`, `features-poison` and `replies-&lt;hospital&gt;`, the manifest at `runs/&lt;run&gt;/manifest.json`, and a
/// copy at `h-&lt;hospital&gt;/manifests/&lt;run&gt;.json` because a hospital's credentials reach only its own container.
/// Safe to run again.
/// </summary>
public sealed class RunProvisioner(StorageConnection storage)
{
    public static string HospitalManifestBlob(string runId) => $"manifests/{StorageNames.ValidateRunId(runId)}.json";

    public async Task ProvisionAsync(RunManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        manifest.Validate();
        var json = manifest.ToJson();
        var runs = storage.GetBlobContainerClient(StorageNames.RunsContainer);
        await runs.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await runs.GetBlobClient(RunLayout.Manifest(manifest.RunId)).UploadAsync(BinaryData.FromBytes(json), overwrite: true, cancellationToken)
            .ConfigureAwait(false);
        await storage.GetQueueClient(StorageNames.FeaturesQueue).CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await storage.GetQueueClient(StorageNames.FeaturesPoisonQueue).CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        foreach (var hospital in manifest.Hospitals)
        {
            var container = storage.GetBlobContainerClient(StorageNames.HospitalContainer(hospital));
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            await container.GetBlobClient(HospitalManifestBlob(manifest.RunId)).UploadAsync(BinaryData.FromBytes(json), overwrite: true, cancellationToken)
                .ConfigureAwait(false);
            await storage.GetQueueClient(StorageNames.RepliesQueue(hospital)).CreateIfNotExistsAsync(cancellationToken: cancellationToken)
                .ConfigureAwait(false);
        }
    }
}

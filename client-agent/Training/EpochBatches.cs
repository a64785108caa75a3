namespace SplitFunctions.ClientAgent.Training;

/// <summary>
/// The rows of each training batch: the training set in this hospital's secret order for the epoch (a fresh
/// permutation per epoch from the hospital's <c>OrderSecret</c>, which the server cannot compute), cut into batches of
/// the run's size. Equal after a restart, so a resumed epoch continues with the same batches.
/// </summary>
internal sealed class EpochBatches(HospitalRun run)
{
    private int[]? order;
    private int orderEpoch = -1;

    public int PerEpoch => (run.Data.Train.Count + run.Manifest.BatchSize - 1) / run.Manifest.BatchSize;

    public ArraySegment<int> Rows(int epoch, int batch)
    {
        var manifest = run.Manifest;
        var train = run.Data.Train;
        if (orderEpoch != epoch)
        {
            order = run.OrderSecret.Order(train.Count, manifest.RunId, "train", epoch);
            orderEpoch = epoch;
        }
        var start = batch * manifest.BatchSize;
        return new ArraySegment<int>(order!, start, Math.Min(manifest.BatchSize, train.Count - start));
    }
}

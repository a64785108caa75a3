using SplitFunctions.Core.Data;

namespace SplitFunctions.ClientAgent.Training;

/// <summary>The rows of each training batch: the training set in this hospital's shuffled order for the epoch, cut into batches of the run's size.</summary>
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
            order = BatchOrder.Shuffle(train.Count, manifest.Seed ^ run.HospitalSalt, epoch);
            orderEpoch = epoch;
        }
        var start = batch * manifest.BatchSize;
        return new ArraySegment<int>(order!, start, Math.Min(manifest.BatchSize, train.Count - start));
    }
}

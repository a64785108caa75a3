using SplitFunctions.Core.Data;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Audit;

/// <summary>
/// The multi-view attack's first half: a server that receives each patient k times (every epoch, every validation and
/// evaluation), each time with fresh noise, averages the views it can link to one patient, so the noise shrinks to about
/// sigma / sqrt(k). With an order the server can derive (the batch order before issue 29) it links exactly; without one
/// it links each later view to the running means of the first view's patients by content: by the one-to-one assignment
/// of least summed squared (L2) distance, since every view (an epoch, a validation) holds each patient exactly once, or
/// each row to its nearest mean alone, which lets many rows fall on one patient. Neither wins everywhere (on
/// PneumoniaMNIST one to one linked more views right, nearest alone re-identified more patients, piling views onto the
/// most distinctive ones), so the audit runs both. It links in a denoised space when it has one (e.g. its ridge map's
/// pixels: the noise of thousands of activation values would otherwise swamp the distances between patients).
/// </summary>
public static class MultiViewLinking
{
    /// <summary>
    /// Averages <paramref name="views"/> (k tensors [n, ...], row i of each the same patient). Exact linking: the mean of
    /// the k rows. Otherwise each later view is shuffled (the server does not know its order, <paramref name="seed"/>)
    /// and its rows are linked to the running means of the patients linked so far; returns the averages in
    /// the first view's order and the fraction of later-view rows linked to their own patient (1 for exact linking). The
    /// rows of a view go to distinct patients (<see cref="MinCostAssignment"/>); <paramref name="oneToOne"/> false links
    /// each row to its nearest mean alone.
    /// <paramref name="linkingSpace"/>, when given, maps views to the features the distances are measured in; it must be
    /// linear (the running mean of mapped views is the mapped running mean).
    /// </summary>
    public static (Tensor Average, double LinkingAccuracy) Average(IReadOnlyList<Tensor> views, bool exact, ulong seed,
        Func<Tensor, Tensor>? linkingSpace = null, bool oneToOne = true)
    {
        ArgumentNullException.ThrowIfNull(views);
        if (views.Count == 0) throw new ArgumentException("at least one view is needed", nameof(views));
        using var scope = NewDisposeScope();
        var n = views[0].shape[0];
        var shape = views[0].shape;
        if (exact || views.Count == 1) return (stack(views).mean([0]).MoveToOuterDisposeScope(), 1.0);
        Tensor Features(Tensor view) => (linkingSpace is null ? view : linkingSpace(view)).reshape(n, -1).to(float64);
        var sum = views[0].reshape(n, -1).to(float64).clone();
        var featureSum = Features(views[0]);
        var counts = ones(n, 1, dtype: float64);
        long correct = 0, linked = 0;
        for (var j = 1; j < views.Count; j++)
        {
            var order = SeededRandom.Permutation((int)n, (long)seed + j).Select(i => (long)i).ToArray();
            var shuffled = views[j].reshape(n, -1).index_select(0, tensor(order)).to(float64);
            var shuffledFeatures = Features(views[j]).index_select(0, tensor(order));
            // Nearest running mean: ||v - m||^2 = ||v||^2 - 2 v.m + ||m||^2, the v term constant per row.
            var means = featureSum / counts;
            var distance = means.pow(2).sum(1).unsqueeze(0) - 2 * shuffledFeatures.matmul(means.T);
            var linkedTo = oneToOne ? tensor(MinCostAssignment.Solve(distance.contiguous().data<double>().ToArray(), (int)n).Select(c => (long)c).ToArray())
                : distance.argmin(1);
            correct += linkedTo.eq(tensor(order)).sum().item<long>();
            linked += n;
            sum = sum.index_add(0, linkedTo, shuffled, 1);
            featureSum = featureSum.index_add(0, linkedTo, shuffledFeatures, 1);
            counts = counts.index_add(0, linkedTo, ones(n, 1, dtype: float64), 1);
        }
        var average = (sum / counts).to(views[0].dtype).reshape(shape);
        return (average.MoveToOuterDisposeScope(), (double)correct / linked);
    }
}

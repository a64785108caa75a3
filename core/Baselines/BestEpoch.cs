namespace SplitFunctions.Core.Baselines;

/// <summary>
/// The epoch with the best validation score and the state (weights) it ended with, so the number of epochs is chosen on
/// validation and the test split is scored once, on that state, never to choose it. Ties keep the earlier epoch; a
/// score that is not a number never wins.
/// </summary>
public sealed class BestEpoch<TState>
{
    /// <summary>The chosen epoch (1-based); 0 while no epoch has a finite score.</summary>
    public int Epoch { get; private set; }

    public double Score { get; private set; } = double.NegativeInfinity;

    /// <summary>What <c>save</c> returned for <see cref="Epoch"/>; the default while none is chosen.</summary>
    public TState? State { get; private set; }

    /// <summary>Offers an epoch's validation score; <paramref name="save"/> runs only when it is the best so far. True when it became the best.</summary>
    public bool Offer(int epoch, double validationScore, Func<TState> save)
    {
        ArgumentNullException.ThrowIfNull(save);
        if (double.IsNaN(validationScore) || validationScore <= Score) return false;
        (Epoch, Score, State) = (epoch, validationScore, save());
        return true;
    }
}

using SplitFunctions.Core.Baselines;

namespace SplitFunctions.Tests.Engine;

/// <summary>BestEpoch: the epoch chosen on validation and the state it had, saved only when it becomes the best (test is scored on it once).</summary>
public sealed class BestEpochTests
{
    [Fact]
    public void The_best_validation_epoch_is_kept_with_its_state_saved_once_per_improvement_ties_keeping_the_earlier()
    {
        var best = new BestEpoch<string>();
        var saved = new List<int>();
        double[] validation = [0.70, 0.90, 0.85, 0.90, double.NaN, 0.60];

        for (var epoch = 1; epoch <= validation.Length; epoch++)
        {
            var e = epoch;
            best.Offer(epoch, validation[epoch - 1], () =>
            {
                saved.Add(e);
                return $"weights after epoch {e}";
            });
        }

        best.Epoch.Should().Be(2);
        best.Score.Should().Be(0.90);
        best.State.Should().Be("weights after epoch 2");
        // Only improvements pay for a save: the tie at epoch 4, the NaN and the worse epochs do not.
        saved.Should().Equal(1, 2);
    }

    [Fact]
    public void No_epoch_is_chosen_while_no_score_is_a_number()
    {
        var best = new BestEpoch<string>();

        best.Offer(1, double.NaN, () => "never").Should().BeFalse();

        best.Epoch.Should().Be(0);
        best.State.Should().BeNull();
        best.Offer(2, 0.5, () => "epoch 2").Should().BeTrue();
        best.Epoch.Should().Be(2);
    }
}

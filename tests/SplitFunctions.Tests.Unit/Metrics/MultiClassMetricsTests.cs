using SplitFunctions.Core.Metrics;

namespace SplitFunctions.Tests.Metrics;

/// <summary>Multi-class and multi-label metrics on hand-checked cases.</summary>
public sealed class MultiClassMetricsTests
{
    [Fact]
    public void Multi_class_accuracy_balanced_accuracy_confusion_and_one_vs_rest_auc()
    {
        // 3 classes, 6 samples; logits put the argmax on: 0, 0, 1, 2, 2, 0 for labels 0, 0, 1, 1, 2, 2.
        float[] logits =
        [
            3, 0, 0,
            2, 1, 0,
            0, 3, 0,
            0, 1, 2,
            0, 0, 4,
            1, 0, 0.5f,
        ];
        float[] labels = [0, 0, 1, 1, 2, 2];
        var s = MultiClassScores.Score(logits, labels, 3);

        s.Accuracy.Should().BeApproximately(4 / 6.0, 1e-12);
        s.BalancedAccuracy.Should().BeApproximately((1 + 0.5 + 0.5) / 3, 1e-12);
        s.Confusion.Should().BeEquivalentTo(new[] { new[] { 2, 0, 0 }, new[] { 0, 1, 1 }, new[] { 1, 0, 1 } }, o => o.WithStrictOrdering());
        // Class 0 against the rest: softmax p0 ranks both class-0 samples above the other four.
        s.AucPerClass[0].Should().Be(1.0);
        s.MacroAuc.Should().BeApproximately(s.AucPerClass.Average(), 1e-12);
        s.MicroAuc.Should().BeInRange(0.5, 1.0);
        MultiClassScores.Softmax([1000, 1000], 2).Should().Equal(0.5f, 0.5f);
    }

    [Fact]
    public void A_perfect_and_an_inverted_multi_class_model_score_one_and_zero()
    {
        float[] labels = [0, 1, 2, 0, 1, 2];
        var perfect = labels.SelectMany(l => Enumerable.Range(0, 3).Select(k => k == (int)l ? 5f : 0f)).ToArray();
        var p = MultiClassScores.Score(perfect, labels, 3);
        (p.Accuracy, p.BalancedAccuracy, p.MacroAuc, p.MicroAuc).Should().Be((1.0, 1.0, 1.0, 1.0));
        var inverted = perfect.Select(v => -v).ToArray();
        MultiClassScores.Score(inverted, labels, 3).MacroAuc.Should().Be(0.0);
    }

    [Fact]
    public void A_class_absent_from_the_split_has_no_auc_and_is_left_out_of_the_macro_mean()
    {
        float[] logits = [2, 0, 0, 0, 2, 0, 2, 0, 0];
        var s = MultiClassScores.Score(logits, [0f, 1f, 0f], 3);
        double.IsNaN(s.AucPerClass[2]).Should().BeTrue();
        s.MacroAuc.Should().Be(1.0);
        var bad = () => MultiClassScores.Score(logits, [0f, 3f, 0f], 3);
        bad.Should().Throw<ArgumentException>().WithMessage("*label 3 of sample 1 is not a class 0..2*");
    }

    [Fact]
    public void Multi_label_auc_per_label_and_mean()
    {
        // Label 0 ranked perfectly, label 1 inverted, label 2 constant (no AUC).
        float[] logits = [2, -1, 0, -2, -3, 0, 1, -2, 0];
        float[] labels = [1, 0, 1, 0, 1, 1, 1, 0, 1];
        var s = MultiLabelScores.Score(logits, labels, 3);
        s.AucPerLabel[0].Should().Be(1.0);
        s.AucPerLabel[1].Should().Be(0.0);
        double.IsNaN(s.AucPerLabel[2]).Should().BeTrue();
        s.MeanAuc.Should().Be(0.5);
    }
}

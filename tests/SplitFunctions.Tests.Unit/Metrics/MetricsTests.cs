using SplitFunctions.Core.Data;
using SplitFunctions.Core.Metrics;

namespace SplitFunctions.Tests.Metrics;

/// <summary>Metrics against values computed by hand.</summary>
public sealed class MetricsTests
{
    [Fact]
    public void Auc_WithoutTies_CountsConcordantPairs()
    {
        // Pairs (positive, negative): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1) yes, (0.8, 0.4) yes -> 3/4.
        ClassificationMetrics.RocAuc([0.1f, 0.4f, 0.35f, 0.8f], [0, 0, 1, 1]).Should().Be(0.75);
    }

    [Fact]
    public void Auc_WithTies_CountsATieAsOneHalf()
    {
        // Positives {0.5, 0.8}, negatives {0.5, 0.2}: 0.5 + 1 + 1 + 1 = 3.5 of 4 pairs.
        ClassificationMetrics.RocAuc([0.5f, 0.5f, 0.2f, 0.8f], [1, 0, 0, 1]).Should().Be(0.875);
        // All scores equal: every pair is a tie.
        ClassificationMetrics.RocAuc([0.3f, 0.3f, 0.3f, 0.3f, 0.3f], [1, 0, 1, 0, 0]).Should().Be(0.5);
    }

    [Fact]
    public void Auc_PerfectAndReversed_AndOneClass()
    {
        ClassificationMetrics.RocAuc([0.9f, 0.1f, 0.8f], [1, 0, 1]).Should().Be(1.0);
        ClassificationMetrics.RocAuc([0.1f, 0.9f, 0.2f], [1, 0, 1]).Should().Be(0.0);
        double.IsNaN(ClassificationMetrics.RocAuc([0.1f, 0.9f], [1, 1])).Should().BeTrue();
    }

    [Fact]
    public void ConfusionMatrix_AtThreshold()
    {
        float[] scores = [0.9f, 0.6f, 0.5f, 0.4f, 0.2f, 0.7f];
        float[] labels = [1, 0, 1, 1, 0, 1];
        var m = ConfusionMatrix.At(scores, labels, 0.5);
        m.Should().Be(new ConfusionMatrix(TruePositives: 3, FalsePositives: 1, TrueNegatives: 1, FalseNegatives: 1));
        m.Accuracy.Should().BeApproximately(4 / 6.0, 1e-12);
        m.Sensitivity.Should().Be(0.75);
        m.Specificity.Should().Be(0.5);
        m.Precision.Should().Be(0.75);
        ClassificationMetrics.Accuracy(scores, labels, 0.3).Should().BeApproximately(5 / 6.0, 1e-12);
    }

    [Fact]
    public void Msle_And_Rmsle_ByHand()
    {
        // log(2) - log(4) = -log 2 for both samples.
        var msle = RegressionMetrics.Msle([1, 3], [3, 1]);
        msle.Should().BeApproximately(Math.Log(2) * Math.Log(2), 1e-12);
        RegressionMetrics.Rmsle([1, 3], [3, 1]).Should().BeApproximately(Math.Log(2), 1e-12);
        RegressionMetrics.Msle([0, 9], [0, 9]).Should().Be(0);
        // Hand-computed: ((ln 101 - ln 111)^2 + (ln 51 - ln 41)^2) / 2.
        var expected = (Math.Pow(Math.Log(101) - Math.Log(111), 2) + Math.Pow(Math.Log(51) - Math.Log(41), 2)) / 2;
        RegressionMetrics.Msle([100, 50], [110, 40]).Should().BeApproximately(expected, 1e-12);
        expected.Should().BeApproximately(0.028274, 1e-6); // (0.0089127 + 0.0476351) / 2
    }

    [Fact]
    public void Smape_IsThePapersFormWithoutTheFactorTwo()
    {
        // |1-3|/(1+3) = 0.5 per sample -> 50%, where the conventional 2|y-ŷ|/(|y|+|ŷ|) would give 100%.
        RegressionMetrics.Smape([1, 3], [3, 1]).Should().BeApproximately(50, 1e-12);
        // 10/210 and 10/90: (0.047619 + 0.111111) / 2 = 7.9365%.
        RegressionMetrics.Smape([100, 50], [110, 40]).Should().BeApproximately(100 * (10 / 210.0 + 10 / 90.0) / 2, 1e-12);
        RegressionMetrics.Smape([0, 10], [0, 10]).Should().Be(0, "a pair of zeros is a perfect prediction");
        RegressionMetrics.SmapeVariant.Should().Contain("no factor 2");
    }

    [Fact]
    public void Score_CombinesTheThree()
    {
        var s = RegressionMetrics.Score([100, 50], [110, 40]);
        s.Rmsle.Should().BeApproximately(Math.Sqrt(s.Msle), 1e-15);
        s.Samples.Should().Be(2);
        s.SmapePercent.Should().BeApproximately(7.9365, 1e-4);
    }

    [Fact]
    public void Msle_RejectsValuesWhereTheLogIsUndefined()
    {
        var act = () => RegressionMetrics.Msle([1, 2], [1, -1.5f]);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*sample 1*above -1*");
    }

    [Fact]
    public void Friedewald_ByHand_AndItsLimit()
    {
        Friedewald.Ldl(200, 50, 150).Should().Be(120);
        Friedewald.Ldl(193, 48, 92).Should().BeApproximately(126.6, 1e-12);
        Friedewald.IsApplicable(399).Should().BeTrue();
        Friedewald.IsApplicable(400).Should().BeFalse();
        Friedewald.Ldl([200f, 193f], [50f, 48f], [150f, 92f]).Should().Equal(120f, 126.6f);
    }

    [Fact]
    public void Friedewald_AgreesWithMostLipidsRows_BelowItsLimit()
    {
        // The data README says most LDL values were calculated with the formula: check that it holds on the real file.
        var data = CsvTabularLoader.Load(SharedData.Lipids, ColumnMapping.NhisLipids);
        var tc = data.Column("tot_chole");
        var hdl = data.Column("HDL_chole");
        var tg = data.Column("triglyceride");
        var estimate = Friedewald.Ldl(tc, hdl, tg);
        var applicable = Enumerable.Range(0, data.Count).Where(i => Friedewald.IsApplicable(tg[i])).ToArray();
        var agree = applicable.Count(i => Math.Abs(estimate[i] - data.Targets[i]) <= 1.0);
        (agree / (double)applicable.Length).Should().BeGreaterThan(0.8);
    }
}

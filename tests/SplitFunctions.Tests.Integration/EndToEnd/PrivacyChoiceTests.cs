using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Model;
using SplitFunctions.LocalRun.Studies;

namespace SplitFunctions.Tests.EndToEnd;

/// <summary>
/// The privacy study's choice of the default, on validation figures: accuracy first (every hospital within 0.01 of no defence, or
/// when no defence keeps that, within 0.01 of the cheapest defence), then the least leakage.
/// </summary>
public sealed class PrivacyChoiceTests
{
    private static PrivacyArmResult Arm(string name, double ssimAboveMean, params double[] validationAucs) =>
        new(new PrivacyArm(name, ModelCatalog.PneumoniaCnn, 0, 0),
            [.. validationAucs.Select((auc, i) => new PrivacyHospitalResult($"hospital-{(char)('a' + i)}", 100, auc, auc,
                new LeakageReport([new AuditAttack("baseline: the mean image", 0.6, 15, 0.01), new AuditAttack("ridge", 0.6 + ssimAboveMean, 20, 0.5)],
                    0.9, 0.1, 100, 0, []), null, null, 0.01))], 1);

    [Fact]
    public void Among_defences_that_keep_every_hospital_within_the_tolerance_the_least_leaking_is_chosen()
    {
        var none = Arm("none", 0.30, 0.98, 0.96, 0.94);
        var chosen = PrivacyStudy.Choose([none, Arm("leaky", 0.25, 0.98, 0.96, 0.935), Arm("tight", 0.10, 0.975, 0.955, 0.932),
            Arm("costly", 0.01, 0.97, 0.95, 0.92)], 0.01);
        chosen.Arm.Name.Should().Be("tight", "it keeps every hospital within 0.01 and leaks less than 'leaky'; 'costly' loses 0.02 at hospital-c");
    }

    [Fact]
    public void When_no_defence_keeps_accuracy_the_least_leaking_within_the_tolerance_of_the_cheapest_is_chosen_not_the_cheapest_alone()
    {
        var none = Arm("none", 0.30, 0.98, 0.96, 0.94);
        var chosen = PrivacyStudy.Choose([none, Arm("deeper cut", 0.28, 0.98, 0.95, 0.92), Arm("clipped noise", 0.15, 0.98, 0.955, 0.912),
            Arm("nopeek", 0.03, 0.70, 0.70, 0.70)], 0.01);
        chosen.Arm.Name.Should().Be("clipped noise", "the deeper cut is cheapest (-0.020 at hospital-c) but hides little; clipped noise loses 0.028, "
            + "within 0.01 of it, and leaks far less; NoPeek is out of reach on accuracy");
    }
}

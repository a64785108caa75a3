using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Tests.Function;

/// <summary>
/// The run's value bounds in one pass over a frame (absolute magnitude, then the clip norm's or the running bound), each
/// refusal under <see cref="ProtocolRejection.OutOfBounds"/>: the values are finite, so NonFinite would mislead whoever reads it.
/// The end-to-end refusals (nothing reaches the optimizer) are RunValueBoundsTests in the integration project.
/// </summary>
public sealed class RunValueBoundsUnitTests
{
    private static readonly long[] Cut = [4];

    private static RunValueBounds Bounds(double clipNorm)
    {
        var manifest = RunManifest.ForModel("run-b", ModelCatalog.PneumoniaCnn, TrainingMode.Vanilla, ["alpha"], 1);
        return new RunValueBounds(manifest with { Privacy = new PrivacySettings { ClipNorm = clipNorm } }, Cut);
    }

    private static DecodedTensor Frame(params float[] values) => new(ElementType.Float32, [values.Length / 4, 4], values);

    private static ProtocolException Refusal(Action check) => check.Should().Throw<ProtocolException>().Which;

    [Fact]
    public void With_a_clip_norm_a_sample_beyond_its_bound_is_out_of_bounds_and_an_absolute_violation_is_reported_first()
    {
        var bounds = Bounds(clipNorm: 2);
        bounds.SampleNormBound.Should().BeApproximately(2 * 1.01, 1e-5, "no noise, fp32: the clip norm with its 1 % margin");
        bounds.RequireActivations(Frame(1, 1, 1, 0.9f, 0, 0, 0, 0), "activations");

        var norm = Refusal(() => bounds.RequireActivations(Frame(1, 1, 1, 0.9f, 3, 0, 0, 0), "activations"));
        norm.Rejection.Should().Be(ProtocolRejection.OutOfBounds);
        norm.Message.Should().Contain("sample 1 has L2 norm 3").And.Contain("privacy.clipNorm 2");

        // Sample 0 is over the norm, sample 1 holds a value over the absolute bound: the absolute one names the element.
        var absolute = Refusal(() => bounds.RequireActivations(Frame(5, 0, 0, 0, 0, 0, 2e6f, 0), "activations"));
        absolute.Rejection.Should().Be(ProtocolRejection.OutOfBounds);
        absolute.Message.Should().Contain("activations element 6 is 2E+06").And.NotContain("L2 norm");
    }

    [Fact]
    public void Without_a_clip_norm_the_running_bound_refuses_a_frame_far_above_the_typical_one_after_the_warm_up()
    {
        var bounds = Bounds(clipNorm: 0);
        bounds.SampleNormBound.Should().BeNull();
        for (var i = 0; i < RunValueBounds.Warmup; i++) bounds.RequireActivations(Frame(0.5f, -2, 0, 1), "activations");
        bounds.RequireActivations(Frame(0, 150, 0, 0), "activations");
        var running = Refusal(() => bounds.RequireActivations(Frame(0, 0, -250, 0), "activations"));
        running.Rejection.Should().Be(ProtocolRejection.OutOfBounds);
        running.Message.Should().Contain("reach 250").And.Contain("100 times the 2 typical");

        var gradients = Bounds(clipNorm: 0);
        Refusal(() => gradients.RequireGradient(Frame(0, 0, float.MaxValue, 0), "output gradients")).Rejection.Should().Be(ProtocolRejection.OutOfBounds);
        Refusal(() => gradients.RequireGradient(Frame(0, 0, float.NaN, 0), "output gradients")).Message.Should().Contain("element 2 is NaN");
    }
}

using System.CommandLine;
using SplitFunctions.Core.CommandLine;

namespace SplitFunctions.Tests.CommandLine;

/// <summary>The privacy options every run-creating tool shares: one default, one check, one reading of the U-shaped defence.</summary>
public sealed class PrivacyOptionsTests
{
    private static (PrivacyOptions Options, ParseResult Result) Parse(double defaultNoise, params string[] args)
    {
        var options = new PrivacyOptions(defaultNoiseSigma: defaultNoise);
        var command = new RootCommand();
        options.AddTo(command);
        return (options, command.Parse(args));
    }

    [Fact]
    public void Defaults_come_from_the_tool_and_nothing_is_on_unless_asked()
    {
        var (options, result) = Parse(1.0);
        result.Errors.Should().BeEmpty();
        result.GetValue(options.NoiseSigma).Should().Be(1.0);
        result.GetValue(options.ClipNorm).Should().Be(0);
        options.Problem(result).Should().BeNull();
        options.UShapedDefence(result).Should().BeEquivalentTo(new Core.Runs.GradientDefence());
    }

    [Fact]
    public void Either_ushaped_noise_implies_the_max_norm_top_up_and_the_old_study_names_still_parse()
    {
        var (options, result) = Parse(0, "--ushaped-defence-noise", "0.5");
        result.Errors.Should().BeEmpty();
        var defence = options.UShapedDefence(result);
        defence.MaxNorm.Should().BeTrue();
        defence.NoiseMultiplier.Should().Be(0.5);

        (options, result) = Parse(0, "--ushaped-direction-noise", "2");
        options.UShapedDefence(result).Should().BeEquivalentTo(new Core.Runs.GradientDefence { MaxNorm = true, DirectionNoise = 2 });
    }

    [Theory]
    [InlineData("--noise-sigma", "-1")]
    [InlineData("--clip-norm", "NaN")]
    [InlineData("--nopeek-alpha", "-0.5")]
    [InlineData("--ushaped-noise", "Infinity")]
    public void A_setting_out_of_range_is_one_line_naming_the_option(string option, string value)
    {
        var (options, result) = Parse(0, option, value);
        var problem = options.Problem(result);
        problem.Should().StartWith(option).And.Contain(">= 0").And.NotContain("\n");
    }
}

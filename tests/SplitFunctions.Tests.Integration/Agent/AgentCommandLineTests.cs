using SplitFunctions.ClientAgent;

namespace SplitFunctions.Tests.Agent;

/// <summary>The command line itself: help, usage errors, the options that must not exist, and their exit codes.</summary>
public sealed class AgentCommandLineTests
{
    [Fact]
    public async Task Help_lists_every_command()
    {
        var run = await AgentTestBed.RunAsync(["--help"]);
        run.ExitCode.Should().Be(0);
        run.Output.Should().ContainAll("init", "train", "evaluate", "status", "--config");
    }

    [Fact]
    public async Task Train_help_lists_its_bounds_and_hides_epochs()
    {
        var run = await AgentTestBed.RunAsync(["train", "--help"]);
        run.ExitCode.Should().Be(0);
        run.Output.Should().ContainAll("--max-minutes", "--max-batches", "--retry-rejected", "--no-validation").And.NotContain("--epochs");
    }

    [Fact]
    public async Task Epochs_at_a_hospital_is_a_usage_error_that_says_why()
    {
        var run = await AgentTestBed.RunAsync(["train", "--epochs", "5"]);
        run.ExitCode.Should().Be((int)ExitCode.Usage);
        run.Error.Should().Contain("run manifest fixes the epochs");
    }

    [Theory]
    [InlineData("train", "--max-batches", "-1")]
    [InlineData("train", "--bogus")]
    [InlineData("evaluate", "--split", "everything")]
    [InlineData("init")]
    public async Task Bad_command_lines_exit_with_the_usage_code(params string[] args)
    {
        var run = await AgentTestBed.RunAsync(args);
        run.ExitCode.Should().Be((int)ExitCode.Usage, run.ToString());
        run.Error.Should().Contain("--help");
    }

    [Fact]
    public async Task No_command_is_a_usage_error()
    {
        var run = await AgentTestBed.RunAsync([]);
        run.ExitCode.Should().Be((int)ExitCode.Usage);
    }

    [Fact]
    public async Task Missing_configuration_names_init()
    {
        using var dir = new TempDirectory();
        var run = await AgentTestBed.RunAsync(["train", "--config", dir.File("absent.json")]);
        run.ExitCode.Should().Be((int)ExitCode.Configuration);
        run.Error.Should().Contain("splitfn-agent init");
    }
}

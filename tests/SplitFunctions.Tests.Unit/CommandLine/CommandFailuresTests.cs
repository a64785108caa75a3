using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Commands;

namespace SplitFunctions.Tests.CommandLine;

/// <summary>What reaches a hospital's or an operator's terminal when a command fails: one line and its exit code, never a stack trace.</summary>
public sealed class CommandFailuresTests
{
    [Fact]
    public async Task An_unexpected_agent_failure_prints_one_escaped_line_and_its_exit_code_without_a_stack_trace()
    {
        using var error = new StringWriter();
        var code = await AgentCli.RunAsync(error, () => throw new InvalidOperationException("boom \u001b[2J\rcleared\n   at Some.Frame() in Secret.cs:line 1"));
        code.Should().Be((int)ExitCode.InternalError);
        var lines = error.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(2, error.ToString());
        lines[0].Should().Be("splitfn-agent: unexpected error (please report it): InvalidOperationException: boom \\u001b[2J\\u000dcleared");
        lines[1].Should().Be("exit code 1 (InternalError)");
        error.ToString().Should().NotContain(" at ").And.NotContain("\u001b");
    }
}

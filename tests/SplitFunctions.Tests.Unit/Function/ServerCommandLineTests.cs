using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Tests.Function;

/// <summary>The server's command line: the Functions host's own arguments reach the worker, drain options are checked.</summary>
public sealed class ServerCommandLineTests
{
    [Fact]
    public void The_hosts_arguments_go_to_the_worker_untouched()
    {
        string[] hostArgs = ["--host", "127.0.0.1", "--port", "50051", "--workerId", "w-1", "--requestId", "r-1", "--grpcMaxMessageLength", "2147483647"];
        var parse = ServerCommandLine.Build().Parse(hostArgs);
        ServerCommandLine.UsageErrors(parse).Should().BeEmpty();
        parse.CommandResult.Command.Should().Be(parse.RootCommandResult.Command, "no verb: the isolated worker");
        parse.UnmatchedTokens.Should().Equal(hostArgs);
    }

    [Fact]
    public void Drain_takes_its_options_and_refuses_unknown_ones()
    {
        var root = ServerCommandLine.Build();
        var parse = root.Parse(["drain", "--exit-when-empty", "--instance-id", "job-1"]);
        ServerCommandLine.UsageErrors(parse).Should().BeEmpty();
        parse.CommandResult.Command.Name.Should().Be("drain");
        ServerCommandLine.UsageErrors(root.Parse(["drain", "--exit-when-emtpy"])).Should().ContainSingle().Which.Should()
            .Contain("--exit-when-emtpy", "a mistyped option must not start a drain that never exits");
    }
}

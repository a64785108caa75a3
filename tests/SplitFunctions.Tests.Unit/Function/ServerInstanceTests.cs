using SplitFunctions.Functions.Hosting;

namespace SplitFunctions.Tests.Function;

public sealed class ServerInstanceTests
{
    [Fact]
    public void Without_a_replica_name_the_default_id_is_unique_to_this_process()
    {
        // Two drain processes on one machine shared the machine name, hence one lease id: both held every run.
        var expected = Environment.GetEnvironmentVariable("CONTAINER_APP_REPLICA_NAME") ?? $"{Environment.MachineName}-{Environment.ProcessId}";
        ServerInstance.DefaultId.Should().Be(expected);
    }
}

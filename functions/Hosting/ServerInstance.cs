namespace SplitFunctions.Functions.Hosting;

/// <summary>This server instance's stable id: it names the run leases it takes, so a restart under the same id takes them back at once.</summary>
public sealed record ServerInstance(string Id)
{
    /// <summary>
    /// The replica name Azure Container Apps sets (one process per replica), else the machine name and this process's id:
    /// two drain processes on one machine must not share a lease id, or both would hold every run's lease at once
    /// (invariant 5). A restart then waits for its old leases to expire, unless it names a stable `--instance-id`.
    /// </summary>
    public static string DefaultId => Environment.GetEnvironmentVariable("CONTAINER_APP_REPLICA_NAME")
        ?? FormattableString.Invariant($"{Environment.MachineName}-{Environment.ProcessId}");
}

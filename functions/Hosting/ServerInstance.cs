namespace SplitFunctions.Functions.Hosting;

/// <summary>This server instance's stable id: it names the run leases it takes, so a restart under the same id takes them back at once.</summary>
public sealed record ServerInstance(string Id)
{
    /// <summary>The replica name Azure Container Apps sets, else the machine name.</summary>
    public static string DefaultId => Environment.GetEnvironmentVariable("CONTAINER_APP_REPLICA_NAME") ?? Environment.MachineName;
}

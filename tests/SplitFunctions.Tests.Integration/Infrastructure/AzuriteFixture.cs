using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Storage;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Tests.Infrastructure;

/// <summary>One Azurite (blob + queue, in memory, free loopback ports) shared by every test in the "Azurite" collection.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private AzuriteProcess? _azurite;

    public AzuriteProcess Azurite => _azurite ?? throw new InvalidOperationException("Azurite has not started.");

    public StorageConnection Connection => Azurite.Connection;

    public async Task InitializeAsync()
    {
        // A missing Azurite is a failure with an instruction (AzuriteNotInstalledException), never a skip.
        _azurite = await AzuriteProcess.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_azurite is not null) await _azurite.DisposeAsync();
    }

    /// <summary>A container name no other test uses.</summary>
    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 63)];
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}

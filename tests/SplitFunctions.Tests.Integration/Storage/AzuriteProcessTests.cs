using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Tests.Storage;

public sealed class AzuriteProcessTests
{
    [Fact]
    public async Task A_missing_Azurite_fails_with_the_setup_instruction_instead_of_skipping()
    {
        using var empty = new TempDirectory();
        var start = () => AzuriteProcess.StartAsync(empty.Path);
        (await start.Should().ThrowAsync<AzuriteNotInstalledException>()).WithMessage("*scripts/setup.sh*npm ci*");
    }
}

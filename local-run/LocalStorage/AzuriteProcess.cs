using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage;
using SplitFunctions.Core.Storage;

namespace SplitFunctions.LocalRun.LocalStorage;

/// <summary>Azurite is not installed where the tests, the benchmark or the demo look for it.</summary>
public sealed class AzuriteNotInstalledException(string message) : Exception(message);

/// <summary>
/// Runs Azurite's blob and queue services (from the repository's node_modules) on free loopback ports, in memory,
/// and stops both process trees on dispose. Used by the integration tests, the benchmark and local demos.
/// </summary>
public sealed class AzuriteProcess : IAsyncDisposable
{
    private readonly List<Process> _processes = [];

    private AzuriteProcess(int blobPort, int queuePort)
    {
        BlobPort = blobPort;
        QueuePort = queuePort;
        Connection = StorageConnection.FromSharedKey(
            new StorageSharedKeyCredential(StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey),
            BlobServiceUri, QueueServiceUri);
    }

    public int BlobPort { get; }

    public int QueuePort { get; }

    public Uri BlobServiceUri => new($"http://127.0.0.1:{BlobPort}/{StorageConnection.DevelopmentAccountName}");

    public Uri QueueServiceUri => new($"http://127.0.0.1:{QueuePort}/{StorageConnection.DevelopmentAccountName}");

    /// <summary>An account-key connection string for this instance (what `AzureWebJobsStorage` would hold).</summary>
    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={StorageConnection.DevelopmentAccountName};AccountKey={StorageConnection.DevelopmentAccountKey};" +
        $"BlobEndpoint={BlobServiceUri};QueueEndpoint={QueueServiceUri};";

    public StorageConnection Connection { get; }

    /// <summary>Walks up from <paramref name="start"/> (default: the app's base directory) to the folder holding SplitFunctions.sln.</summary>
    public static string FindRepositoryRoot(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SplitFunctions.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException($"SplitFunctions.sln was not found above '{start ?? AppContext.BaseDirectory}': run from inside the repository.");
    }

    /// <summary>Starts both services and waits until they accept connections.</summary>
    public static async Task<AzuriteProcess> StartAsync(string? repositoryRoot = null, CancellationToken cancellationToken = default)
    {
        var bin = Path.Combine(repositoryRoot ?? FindRepositoryRoot(), "node_modules", ".bin");
        var blobExe = Path.Combine(bin, "azurite-blob");
        var queueExe = Path.Combine(bin, "azurite-queue");
        if (!File.Exists(blobExe) || !File.Exists(queueExe))
        {
            throw new AzuriteNotInstalledException(
                $"Azurite is not installed: run scripts/setup.sh (it runs `npm ci` in the repository root from the committed package-lock.json). Looked for "
                    + $"{blobExe} and {queueExe}.");
        }

        for (var attempt = 1; ; attempt++)
        {
            var azurite = new AzuriteProcess(FreePort(), FreePort());
            try
            {
                azurite.Launch(blobExe, "--blobHost", "127.0.0.1", "--blobPort", azurite.BlobPort);
                azurite.Launch(queueExe, "--queueHost", "127.0.0.1", "--queuePort", azurite.QueuePort);
                await azurite.WaitListeningAsync(cancellationToken).ConfigureAwait(false);
                return azurite;
            }
            catch (Exception) when (attempt < 3 && !cancellationToken.IsCancellationRequested)
            {
                // Another process may have taken a port between probing and binding: try fresh ports.
                await azurite.DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                await azurite.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private void Launch(string exe, string hostFlag, string host, string portFlag, int port)
    {
        var start = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in new[] { hostFlag, host, portFlag, port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--inMemoryPersistence",
            "--loose" })
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {exe}.");
        _processes.Add(process);
        // Drain the output so a chatty Azurite never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    private async Task WaitListeningAsync(CancellationToken cancellationToken)
    {
        // Node takes over 30 s to start Azurite on a machine loaded far beyond its cores (seen at load 80-100 on 2 cores).
        var deadline = DateTime.UtcNow.AddSeconds(120);
        foreach (var port in new[] { BlobPort, QueuePort })
        {
            while (true)
            {
                if (_processes.FirstOrDefault(p => p.HasExited) is { } exited)
                {
                    throw new InvalidOperationException($"Azurite exited with code {exited.ExitCode} before listening on port {port} (node >= 20 is needed).");
                }
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            catch (OperationCanceledException)
            {
                // It did not exit within the grace period; the kill signal has been sent.
            }
            process.Dispose();
        }
        _processes.Clear();
    }
}

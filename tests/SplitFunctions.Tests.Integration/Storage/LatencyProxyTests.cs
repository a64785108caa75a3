using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Tests.Storage;

/// <summary>
/// The latency proxy on its own, in front of a loopback echo server: a round trip is late by both one-way delays, bytes
/// arrive whole and in order, a bandwidth cap holds, and each request-response turn counts as one exchange. Timing is
/// asserted as lower bounds only (a shared machine can always be slower).
/// </summary>
public sealed class LatencyProxyTests
{
    [Fact]
    public async Task A_round_trip_through_the_proxy_takes_at_least_both_one_way_delays()
    {
        await using var echo = EchoServer.Start();
        await using var proxy = new TcpOutageProxy(echo.Port, new LinkShape(TimeSpan.FromMilliseconds(30), TimeSpan.FromMilliseconds(20)));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxy.Port);
        var stream = client.GetStream();
        var buffer = new byte[1];
        for (var i = 0; i < 3; i++)
        {
            var clock = Stopwatch.StartNew();
            await stream.WriteAsync(new[] { (byte)i });
            await stream.ReadExactlyAsync(buffer);
            clock.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(49), "30 ms up plus 20 ms down (1 ms for the timer's resolution)");
            buffer[0].Should().Be((byte)i);
        }
        proxy.Exchanges.Should().Be(3, "each request after a response is one round trip");
    }

    [Fact]
    public async Task Bytes_cross_the_delay_line_whole_and_in_order_and_a_shape_change_applies_to_open_connections()
    {
        await using var echo = EchoServer.Start();
        await using var proxy = new TcpOutageProxy(echo.Port);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxy.Port);
        var stream = client.GetStream();
        var sent = new byte[3 << 20];
        new Random(5).NextBytes(sent);

        proxy.Shape = LinkShape.RoundTrip(TimeSpan.FromMilliseconds(40));
        var clock = Stopwatch.StartNew();
        // Many small writes: a proxy that slept per chunk would take the delay thousands of times; order must hold either way.
        var writer = Task.Run(async () =>
        {
            for (var offset = 0; offset < sent.Length; offset += 1024) await stream.WriteAsync(sent.AsMemory(offset, 1024));
        });
        var received = new byte[sent.Length];
        await stream.ReadExactlyAsync(received);
        await writer;
        clock.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(39));
        received.Should().Equal(sent);
    }

    [Fact]
    public async Task A_bandwidth_cap_holds_the_transfer_to_its_rate()
    {
        await using var echo = EchoServer.Start();
        // 4 MiB/s each way: 1 MiB up and back cannot take less than 250 ms (each direction's bytes at the cap, overlapping).
        await using var proxy = new TcpOutageProxy(echo.Port, new LinkShape(TimeSpan.Zero, TimeSpan.Zero, 4 << 20));
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, proxy.Port);
        var stream = client.GetStream();
        var sent = new byte[1 << 20];
        var clock = Stopwatch.StartNew();
        var writer = stream.WriteAsync(sent).AsTask();
        await stream.ReadExactlyAsync(new byte[sent.Length]);
        await writer;
        clock.Elapsed.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(245));
    }

    /// <summary>Echoes every byte back on each connection.</summary>
    private sealed class EchoServer : IAsyncDisposable
    {
        private readonly TcpListener listener;
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;

        private EchoServer()
        {
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            loop = AcceptAsync();
        }

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public static EchoServer Start() => new();

        private async Task AcceptAsync()
        {
            var connections = new List<Task>();
            try
            {
                while (true)
                {
                    var client = await listener.AcceptTcpClientAsync(stop.Token);
                    connections.Add(Task.Run(async () =>
                    {
                        using (client)
                        {
                            try
                            {
                                await client.GetStream().CopyToAsync(client.GetStream(), stop.Token);
                            }
                            catch (Exception e) when (e is IOException or OperationCanceledException)
                            {
                            }
                        }
                    }));
                }
            }
            catch (OperationCanceledException)
            {
            }
            await Task.WhenAll(connections);
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            await loop;
            stop.Dispose();
        }
    }
}

using System.Net;
using System.Net.Sockets;

namespace SplitFunctions.LocalRun.LocalStorage;

/// <summary>
/// A loopback TCP forwarder in front of Azurite that can take storage away: while down it refuses new connections and
/// drops open ones, which is what an agent or the function sees when the storage endpoint is unreachable. Azurite keeps
/// its data. Used by the outage tests and by `splitfn-local chaos`. With a <see cref="LinkShape"/> it is also a latency
/// proxy: every chunk crosses it late by the one-way delay of its direction (and no faster than the bandwidth cap),
/// which is how the benchmarks and tests put a hospital's internet round trip between it and storage.
/// </summary>
public sealed class TcpOutageProxy : IAsyncDisposable
{
    private readonly int _targetPort;
    private readonly List<TcpClient> _open = [];
    private readonly object _gate = new();
    private TcpListener? _listener;
    private CancellationTokenSource _cts = new();
    private volatile LinkShape _shape;
    private long _exchanges;

    public TcpOutageProxy(int targetPort, LinkShape? shape = null)
    {
        _targetPort = targetPort;
        _shape = shape ?? LinkShape.None;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Up();
    }

    public int Port { get; }

    /// <summary>The link's delay and cap; a change applies to the chunks read after it, on open connections too.</summary>
    public LinkShape Shape
    {
        get => _shape;
        set => _shape = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// Round trips through the proxy so far: the times a client began to send on a connection that was new or had
    /// answered it last (an HTTP request after its response). Each costs the link's round-trip time.
    /// </summary>
    public long Exchanges => Interlocked.Read(ref _exchanges);

    /// <summary>Starts forwarding.</summary>
    public void Up()
    {
        _cts = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Start();
        _ = AcceptLoopAsync(_listener, _cts.Token);
    }

    /// <summary>Stops listening and cuts every forwarded connection.</summary>
    public void Down()
    {
        _cts.Cancel();
        _listener?.Stop();
        lock (_gate)
        {
            foreach (var c in _open) c.Dispose();
            _open.Clear();
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var inbound = await listener.AcceptTcpClientAsync(ct).ConfigureAwait(false);
                var outbound = new TcpClient();
                try
                {
                    await outbound.ConnectAsync(IPAddress.Loopback, _targetPort, ct).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    inbound.Dispose();
                    outbound.Dispose();
                    continue;
                }
                lock (_gate)
                {
                    _open.Add(inbound);
                    _open.Add(outbound);
                }
                var turn = new Turn();
                _ = PumpAsync(inbound, outbound, () => _shape.Upstream, _ =>
                {
                    if (Interlocked.Exchange(ref turn.Last, Turn.Up) != Turn.Up) Interlocked.Increment(ref _exchanges);
                }, ct);
                _ = PumpAsync(outbound, inbound, () => _shape.Downstream, _ => Interlocked.Exchange(ref turn.Last, Turn.Down), ct);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to, Func<TimeSpan> delay, Action<int> onRead, CancellationToken ct)
    {
        try
        {
            await LinkPump.RunAsync(from.GetStream(), to.GetStream(), delay, () => _shape.BytesPerSecond, onRead, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    // Which way a connection's bytes went last, to count round trips.
    private sealed class Turn
    {
        public const int Up = 1;
        public const int Down = 2;
        public int Last;
    }

    public ValueTask DisposeAsync()
    {
        Down();
        _cts.Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;

namespace SplitFunctions.LocalRun.LocalStorage;

/// <summary>
/// One direction of a proxied connection, as a delay line: a reader stamps each chunk with the time it is due (when it
/// would have finished crossing the bandwidth cap, plus the one-way delay; with neither, at once) and a writer sends the
/// chunks in order as they fall due, so the link's throughput is kept while each byte arrives late by the delay; a
/// sleep per chunk would instead serialise the chunks and add the delay once per chunk.
/// </summary>
internal static class LinkPump
{
    private const int ChunkBytes = 64 * 1024;

    // At most this many chunks (64 MiB) are held in flight per direction; a full line holds the reader back as TCP would.
    private const int MaxChunksInFlight = 1024;

    private readonly record struct Chunk(byte[] Buffer, int Length, long Due);

    /// <summary>
    /// Copies <paramref name="from"/> to <paramref name="to"/> until either ends; <paramref name="onRead"/> sees each chunk's size as it is read.
    /// </summary>
    public static async Task RunAsync(Stream from, Stream to, Func<TimeSpan> delay, Func<double?> bytesPerSecond, Action<int> onRead, CancellationToken ct)
    {
        var line = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(MaxChunksInFlight) { SingleReader = true, SingleWriter = true });
        var writer = WriteAsync(line, to, ct);
        var linkFree = 0L;
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
                int n;
                try
                {
                    n = await from.ReadAsync(buffer.AsMemory(0, ChunkBytes), ct).ConfigureAwait(false);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    break;
                }
                onRead(n);
                var now = Stopwatch.GetTimestamp();
                // The chunk leaves the sender once the link has carried the chunks before it and this one (the cap), then travels the delay.
                var sent = now;
                if (bytesPerSecond() is { } rate and > 0)
                {
                    sent = Math.Max(now, linkFree) + (long)(n / rate * Stopwatch.Frequency);
                    linkFree = sent;
                }
                try
                {
                    await line.Writer.WriteAsync(new Chunk(buffer, n, sent + (long)(delay().TotalSeconds * Stopwatch.Frequency)), ct).ConfigureAwait(false);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }
            }
        }
        finally
        {
            line.Writer.TryComplete();
            // What was read is still delivered (in order, when due) before the connection closes.
            await writer.ConfigureAwait(false);
        }
    }

    private static async Task WriteAsync(Channel<Chunk> line, Stream to, CancellationToken ct)
    {
        try
        {
            await foreach (var chunk in line.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), chunk.Due);
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, ct).ConfigureAwait(false);
                    await to.WriteAsync(chunk.Buffer.AsMemory(0, chunk.Length), ct).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(chunk.Buffer);
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // The other side is gone: the reader's next chunk fails too, and the proxy tears the connection down.
            line.Writer.TryComplete(e);
        }
        finally
        {
            // Return what was never written.
            while (line.Reader.TryRead(out var left)) ArrayPool<byte>.Shared.Return(left.Buffer);
        }
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;

namespace SplitFunctions.Bench;

/// <summary>
/// Where seal and open spend their time, stage by stage, on one frame in memory (no storage): what
/// <see cref="ProtocolOverheadBench"/> adds to a clear transfer, taken apart. Median milliseconds of the repetitions, and the
/// bytes each whole seal and open allocates.
/// </summary>
public static class ProtocolStages
{
    public static JsonObject Measure(HospitalKey key, FrameTensor tensor, int repetitions)
    {
        var context = new CipherContext("bench", key.HospitalId, 1, PayloadKind.Features, key.KeyId);
        var frameLength = TensorFrame.GetEncodedLength([tensor]);
        var blob = new byte[FrameCipher.GetSealedLength(context, frameLength)];
        var download = new byte[blob.Length];
        var reused = new float[tensor.Values.Length];
        var stages = new Dictionary<string, List<double>>(StringComparer.Ordinal);
        void Add(string stage, long start)
        {
            if (!stages.TryGetValue(stage, out var list)) stages[stage] = list = [];
            list.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        long sealAllocated = 0, openAllocated = 0;
        for (var i = 0; i < repetitions + 2; i++)
        {
            var warm = i < 2;
            var start = Stopwatch.GetTimestamp();
            TensorFrame.Encode([tensor], blob.AsSpan(FrameCipher.GetPlaintextOffset(context), frameLength));
            if (!warm) Add("seal_encode", start);
            start = Stopwatch.GetTimestamp();
            FrameCipher.SealInPlace(key.Key, context, blob);
            if (!warm) Add("seal_encrypt", start);
            start = Stopwatch.GetTimestamp();
            var digest = FrameCipher.SealDigest(blob);
            if (!warm) Add("seal_digest", start);

            blob.CopyTo(download, 0);
            start = Stopwatch.GetTimestamp();
            SecureFrameCodec.VerifyDigest(download, download.Length, digest);
            if (!warm) Add("open_digest", start);
            start = Stopwatch.GetTimestamp();
            var frame = FrameCipher.OpenInPlace(key.Key, context, download);
            if (!warm) Add("open_decrypt", start);
            start = Stopwatch.GetTimestamp();
            var fresh = TensorFrame.Decode(frame);
            if (!warm) Add("open_decode_fresh_array", start);
            start = Stopwatch.GetTimestamp();
            var layouts = TensorFrame.ReadLayout(frame);
            TensorFrame.DecodeTensor(frame, layouts[0], 0, reused);
            if (!warm) Add("open_decode_reused_array", start);
            start = Stopwatch.GetTimestamp();
            frame.Clear();
            if (!warm) Add("open_clear", start);
            start = Stopwatch.GetTimestamp();
            blob.CopyTo(download, 0);
            if (!warm) Add("memcpy_frame", start);
            GC.KeepAlive(fresh);

            // Whole calls, as the wire path makes them: what each allocates per frame.
            var before = GC.GetAllocatedBytesForCurrentThread();
            using (var pooled = SecureFrameCodec.SealPooled(key, context, tensor))
            {
                sealAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
                pooled.Blob.Span.CopyTo(download);
                before = GC.GetAllocatedBytesForCurrentThread();
                GC.KeepAlive(SecureFrameCodec.OpenInPlace(key, context, download.AsSpan(0, pooled.Length), pooled.Length, pooled.Sha256));
                openAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }
        var result = new JsonObject();
        foreach (var (stage, times) in stages) result[stage + "_ms"] = BenchStats.Median(times);
        result["seal_allocated_bytes"] = sealAllocated;
        result["open_allocated_bytes"] = openAllocated;
        return result;
    }

    public static string Describe(JsonObject stages) => string.Join(", ", stages.Select(s => s.Key.EndsWith("_ms", StringComparison.Ordinal)
        ? $"{s.Key[..^3]} {s.Value!.GetValue<double>():F2} ms"
        : $"{s.Key} {s.Value!.GetValue<long>():N0}"));

    /// <summary>A random key for a benchmark's frames.</summary>
    public static HospitalKey BenchKey() => new("bench", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));
}

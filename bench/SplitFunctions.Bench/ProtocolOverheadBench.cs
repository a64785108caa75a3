using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Storage;
using SplitFunctions.LocalRun.LocalStorage;

namespace SplitFunctions.Bench;

/// <summary>
/// protocol_overhead_ratio: time of seal (encode + AES-GCM + seal digest) + upload + download + open (seal digest +
/// AES-GCM + decode) of 4 MiB frames, over the time of uploading and downloading the same frame bytes in clear, on the same
/// Azurite in one run. Rounds alternate the two sides so drift in the machine hits both alike; the median round counts.
/// Seal and open throughput are printed beside raw AES-256-GCM on this CPU, measured in the same run: the limit they approach.
/// </summary>
public static class ProtocolOverheadBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var frameMiB = options.GetInt("frame-mib", 4, 1);
        var frames = options.GetInt("frames", 4, 1);
        var rounds = options.GetInt("rounds", 15, 1);
        var warmup = options.GetInt("warmup", 3, 1);
        // "fresh": open into a new array per frame, as the function did before issue 33 (item 5), to compare in one run.
        var freshArrays = options.Get("open", "pooled") switch
        {
            "pooled" => false,
            "fresh" => true,
            var other => throw new ArgumentException($"--open {other}: use pooled (the function's path) or fresh (a new array per frame)"),
        };

        var values = new float[frameMiB * 1024 * 1024 / sizeof(float)];
        var random = new Random(1);
        for (var i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble() * 2 - 1;
        var tensor = new FrameTensor(ElementType.Float32, [values.Length / 1024, 1024], values);
        var plainFrame = TensorFrame.Encode(tensor);
        var key = new HospitalKey("bench", "k1", RandomNumberGenerator.GetBytes(FrameCipher.KeySize));

        await using var azurite = await AzuriteProcess.StartAsync(RepoPaths.Root);
        var container = azurite.Connection.GetBlobContainerClient(StorageNames.HospitalContainer(key.HospitalId));
        await container.CreateIfNotExistsAsync();

        long sequence = 0;
        // Seconds of each side's uploads and downloads, apart from seal and open: where a difference between the sides goes.
        var transfer = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["plain_upload"] = 0,
            ["plain_download"] = 0,
            ["secure_upload"] = 0,
            ["secure_download"] = 0,
        };
        var written = new List<BlobClient>();
        // Untimed: drop the frames of a side once measured, so Azurite's memory (and its GC pauses) stays flat.
        async Task ForgetAsync()
        {
            foreach (var blob in written) await blob.DeleteIfExistsAsync();
            written.Clear();
        }
        async Task<double> PlainAsync(int count)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                var blob = container.GetBlobClient(StorageNames.FrameBlob("plain", "bench", sequence++));
                var t0 = clock.Elapsed.TotalSeconds;
                await blob.UploadReplacingAsync(BinaryData.FromBytes(plainFrame));
                var t1 = clock.Elapsed.TotalSeconds;
                System.Buffers.ArrayPool<byte>.Shared.Return(await DownloadAsync(blob, plainFrame.Length));
                transfer["plain_upload"] += t1 - t0;
                transfer["plain_download"] += clock.Elapsed.TotalSeconds - t1;
                written.Add(blob);
            }
            var seconds = clock.Elapsed.TotalSeconds;
            await ForgetAsync();
            return seconds;
        }

        var decoded = new float[values.Length];
        var sealSeconds = 0.0;
        var openSeconds = 0.0;
        async Task<double> SecureAsync(int count)
        {
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                var context = new CipherContext("bench", key.HospitalId, sequence++, PayloadKind.Features, key.KeyId);
                var t0 = clock.Elapsed.TotalSeconds;
                using var sealedFrame = SecureFrameCodec.SealPooled(key, context, tensor);
                sealSeconds += clock.Elapsed.TotalSeconds - t0;
                var blob = container.GetBlobClient(StorageNames.FrameBlob(StorageNames.FeaturesFolder, "bench", context.Sequence));
                var tUp = clock.Elapsed.TotalSeconds;
                await blob.UploadReplacingAsync(new BinaryData(sealedFrame.Blob));
                var tDown = clock.Elapsed.TotalSeconds;
                var back = await DownloadAsync(blob, sealedFrame.Length);
                var t1 = clock.Elapsed.TotalSeconds;
                transfer["secure_upload"] += tDown - tUp;
                transfer["secure_download"] += t1 - tDown;
                TensorLayout[] opened;
                try
                {
                    // Into arrays kept frame after frame, as the function decodes a vanilla step's frames (ServerFrameStore's pool).
                    opened = freshArrays
                        ? [.. SecureFrameCodec.OpenInPlace(key, context, back.AsSpan(0, sealedFrame.Length), sealedFrame.Length, sealedFrame.Sha256)
                            .Select(t => new TensorLayout(t.WireType, t.Shape, t.Values.Length, 0))]
                        : SecureFrameCodec.OpenInPlaceInto(key, context, back.AsSpan(0, sealedFrame.Length), sealedFrame.Length, sealedFrame.Sha256,
                            TensorFrame.DefaultMaxElements, _ => [decoded]);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(back);
                }
                openSeconds += clock.Elapsed.TotalSeconds - t1;
                if (opened[0].ElementCount != values.Length || !freshArrays && decoded[^1] != values[^1])
                    throw new InvalidOperationException("secure frame came back short");
                written.Add(blob);
            }
            var seconds = clock.Elapsed.TotalSeconds;
            await ForgetAsync();
            return seconds;
        }

        await PlainAsync(warmup);
        await SecureAsync(warmup);
        sealSeconds = openSeconds = 0;
        foreach (var side in transfer.Keys.ToList()) transfer[side] = 0;

        var plain = new List<double>();
        var secure = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            // Frame by frame, the two sides alternating which goes first: a burst of load on this shared machine then slows
            // both sides' frames of the round alike, where side after side it fell on one of them.
            double plainRound = 0, secureRound = 0;
            for (var frame = 0; frame < frames; frame++)
            {
                if ((round * frames + frame) % 2 == 0)
                {
                    plainRound += await PlainAsync(1);
                    secureRound += await SecureAsync(1);
                }
                else
                {
                    secureRound += await SecureAsync(1);
                    plainRound += await PlainAsync(1);
                }
            }
            plain.Add(plainRound);
            secure.Add(secureRound);
            Console.WriteLine($"  round {round + 1}/{rounds}: plain {MiBPerSecond(frames, frameMiB, plain[^1]):F1} MiB/s, secure "
                + $"{MiBPerSecond(frames, frameMiB, secure[^1]):F1} MiB/s, ratio {secure[^1] / plain[^1]:F3}");
        }

        var (aesEncrypt, aesDecrypt) = PhysicalLimits.AesGcmMiBPerSecond(frameMiB, rounds);
        var stages = ProtocolStages.Measure(key, tensor, rounds);
        var ratios = plain.Zip(secure, (p, s) => s / p).ToList();
        var ratio = Median(ratios);
        var plainRate = MiBPerSecond(frames, frameMiB, Median(plain));
        var secureRate = MiBPerSecond(frames, frameMiB, Median(secure));
        var sealMs = sealSeconds * 1000 / (rounds * frames);
        var openMs = openSeconds * 1000 / (rounds * frames);
        var sealRate = frameMiB * 1000 / sealMs;
        var openRate = frameMiB * 1000 / openMs;
        Console.WriteLine($"protocol_overhead_ratio = {ratio:F3}  (secure {secureRate:F1} MiB/s vs plain {plainRate:F1} MiB/s of {frameMiB} MiB frames, " +
                          $"upload + download each; seal {sealMs:F1} ms, open {openMs:F1} ms per frame; {Environment.ProcessorCount} cores; target <= 1.2)");
        Console.WriteLine($"seal {sealRate:F0} MiB/s, open {openRate:F0} MiB/s  vs  AES-256-GCM on this CPU: encrypt {aesEncrypt:F0} MiB/s, decrypt "
            + $"{aesDecrypt:F0} MiB/s ({frameMiB} MiB buffers, same run)");
        Console.WriteLine("transfers per frame: " + string.Join(", ", transfer.Select(t => $"{t.Key} {t.Value * 1000 / (rounds * frames):F1} ms")));
        Console.WriteLine($"stages per frame (in memory, median of {rounds}): {ProtocolStages.Describe(stages)}");
        BenchResults.Merge("protocol_overhead_ratio", new JsonObject
        {
            ["ratio"] = ratio,
            ["target"] = "<= 1.2",
            ["frame_mib"] = frameMiB,
            ["frames_per_round"] = frames,
            ["open_into"] = freshArrays ? "fresh arrays" : "pooled arrays",
            ["rounds"] = rounds,
            ["secure_mib_per_s"] = secureRate,
            ["plain_mib_per_s"] = plainRate,
            ["seal_ms_per_frame"] = sealMs,
            ["open_ms_per_frame"] = openMs,
            ["seal_mib_per_s"] = sealRate,
            ["open_mib_per_s"] = openRate,
            ["aes_gcm_encrypt_mib_per_s"] = aesEncrypt,
            ["aes_gcm_decrypt_mib_per_s"] = aesDecrypt,
            ["stages"] = stages,
            ["transfer_ms_per_frame"] = new JsonObject([.. transfer.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)(t.Value * 1000 / (rounds * frames))))]),
            ["round_ratios"] = new JsonArray([.. ratios.Select(r => JsonValue.Create(r))]),
            ["what"] = "seal+upload+download+open vs upload+download of the same frame bytes, same Azurite (in memory, loopback), median round; MiB/s counts "
                + "frame bytes per round trip",
        }, options.ResultsPath);
        return 0;
    }

    // As the function does (ServerFrameStore): the announced length streamed into a pooled buffer, opened in place there.
    // The caller returns the buffer to ArrayPool<byte>.Shared.
    private static async Task<byte[]> DownloadAsync(BlobClient blob, long length)
    {
        using var download = (await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new Azure.HttpRange(0, length) })).Value;
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent((int)length);
        await download.Content.ReadExactlyAsync(buffer.AsMemory(0, (int)length));
        return buffer;
    }

    private static double MiBPerSecond(int frames, int frameMiB, double seconds) => frames * frameMiB / seconds;

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}

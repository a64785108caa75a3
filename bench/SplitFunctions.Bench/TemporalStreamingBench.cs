using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// temporal_streaming: temporal epochs with features streamed from their sealed chunks (what the function does) against
/// the in-memory epochs the function used to run (every chunk decrypted once into one array, then global shuffles of it),
/// at 1x and 8x the data. Streamed as the function streams: with its cache of decrypted chunks (a fixed budget, scaled
/// with the window: by default 8 windows, as the product's 2 GiB is 8 of its 256 MiB windows), which holds all of the 1x
/// data and an eighth of the 8x; and without a cache (every epoch reads every chunk). Figures: epoch samples/s of the
/// three, in interleaved rounds (ratios to in-memory, the median of the rounds' ratios, target >= 0.95), and the
/// process's peak resident memory during each (VmHWM, reset before each measurement, measured apart from the rounds):
/// streamed should stay flat from 1x to 8x.
/// </summary>
public static class TemporalStreamingBench
{
    public const string Key = "temporal_streaming";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var model = ModelCatalog.Get(options.Get("model", options.Smoke ? "ldl-mlp" : "covid-ct-cnn"));
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        var rounds = options.GetInt("rounds", 4, 1);
        var batch = options.GetInt("batch", model.BatchSize, 16);
        var baseBatches = options.GetInt("batches", 16, 4);
        var scales = options.Get("scales", options.Smoke ? "1,2" : "1,8").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        // Smaller than the 1x data by default, so even 1x streams through several windows: what "flat" is measured against.
        var windowBytes = (long)options.GetInt("window-mib", 32, 1) << 20;
        var cacheBytes = (long)options.GetInt("cache-mib", (int)(8 * (windowBytes >> 20)), 0) << 20;
        TorchRuntime.Threads = threads;

        await using var rig = await SplitRig.StartAsync().ConfigureAwait(false);
        var uncached = new TemporalFeatureStream(rig.Frames, new DecryptedChunkCache(0));
        var cached = new Dictionary<int, TemporalFeatureStream>();
        var runs = new List<(int Scale, RunManifest Manifest, int Samples)>();
        foreach (var scale in scales)
        {
            var manifest = RunManifest.ForModel($"stream-{scale}x", model, TrainingMode.Temporal, ["s-" + scale], seed: 7) with { BatchSize = batch };
            await rig.ProvisionAsync(manifest).ConfigureAwait(false);
            var samples = batch * baseBatches * scale;
            var clock = Stopwatch.StartNew();
            await TemporalVsCentralizedBench.UploadFeaturesAsync(rig, manifest, BenchHospital.SyntheticData(manifest, samples, salt: scale), chunk: batch)
                .ConfigureAwait(false);
            Console.WriteLine($"  {scale}x: {samples} samples of {model.Name} features uploaded in {samples / batch} chunks ({clock.Elapsed.TotalSeconds:F1} "
                + $"s)");
            runs.Add((scale, manifest, samples));
            cached[scale] = new TemporalFeatureStream(rig.Frames, new DecryptedChunkCache(cacheBytes));
        }

        var result = new JsonObject
        {
            ["target"] = ">= 0.95 (streamed / in-memory epoch samples/s); streamed peak RSS growing < 25 % from 1x to 8x",
            ["model"] = model.Name,
            ["batch"] = batch,
            ["threads"] = threads,
            ["rounds"] = rounds,
            ["window_mib"] = windowBytes >> 20,
            ["cache_mib"] = cacheBytes >> 20,
            ["baseline"] = "the in-memory temporal epochs of the previous release: every chunk decrypted once into one array, then a global seeded shuffle "
                + "per epoch",
        };
        // Memory first, streamed before in-memory: the in-memory baseline's arrays would otherwise stay in the process's
        // heap and hide the streamed figure. One warm-up (which fills the cache) and one measured epoch each; a scale's cache
        // is emptied before the next scale is measured, as a finished run's is.
        var streamed = new Dictionary<int, (double Rate, double PeakMiB)>();
        var memory = new Dictionary<(int Scale, string Side), MemoryFigures>();
        foreach (var (scale, manifest, samples) in runs)
        {
            var (rate, figures) = await MeasureAsync(rig, manifest, 1, (session, epoch) => StreamedEpochAsync(cached[scale], session, epoch, windowBytes))
                .ConfigureAwait(false);
            streamed[scale] = (rate, figures.PeakMiB);
            memory[(scale, "streamed")] = figures;
            cached[scale].Cache.Release(manifest.RunId);
            Console.WriteLine($"  {scale}x streamed: {Describe(figures)}");
        }
        // --memory-only: the peak RSS figures alone (a few minutes, where a run with the rounds takes far longer under load).
        if (options.GetFlag("memory-only"))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"streamed peak RSS {streamed[scales[0]].PeakMiB:F0} -> "
                + $"{streamed[scales[^1]].PeakMiB:F0} MiB ({streamed[scales[^1]].PeakMiB / streamed[scales[0]].PeakMiB - 1:P1}; target < 25 %)"));
            return 0;
        }
        var inMemory = new Dictionary<int, (double Rate, double PeakMiB)>();
        var unions = new Dictionary<int, TrainingSet>();
        foreach (var (scale, manifest, samples) in runs)
        {
            var (rate, figures) = await MeasureAsync(rig, manifest, 1, async (session, epoch) =>
            {
                if (!unions.TryGetValue(scale, out var union)) unions[scale] = union = await LoadUnionAsync(rig, session).ConfigureAwait(false);
                return InMemoryEpoch(session, union, epoch);
            }).ConfigureAwait(false);
            inMemory[scale] = (rate, figures.PeakMiB);
            memory[(scale, "in_memory")] = figures;
            Console.WriteLine($"  {scale}x in memory: {Describe(figures)}");
        }
        // Throughput: streamed and in-memory epochs interleaved round by round (the order alternating), so a change of the
        // machine's load meets both sides; the ratio is the median of the rounds' ratios.
        var ratios = new Dictionary<int, double>();
        var uncachedRates = new Dictionary<int, (double Rate, double Ratio)>();
        var readOnly = new Dictionary<int, double>();
        foreach (var (scale, manifest, samples) in runs)
        {
            var (streamRates, uncachedRounds, memoryRates, roundRatios, uncachedRatios) = await InterleavedAsync(rig, manifest, rounds,
                (session, epoch) => StreamedEpochAsync(cached[scale], session, epoch, windowBytes),
                (session, epoch) => StreamedEpochAsync(uncached, session, epoch, windowBytes),
                (session, epoch) => Task.FromResult(InMemoryEpoch(session, unions[scale], epoch))).ConfigureAwait(false);
            cached[scale].Cache.Release(manifest.RunId);
            uncachedRates[scale] = (BenchStats.Median(uncachedRounds), BenchStats.Median(uncachedRatios));
            // Reading alone (download, decrypt, decode, no training): on cores the training also uses, if the two simply added
            // up, streamed / in-memory would be 1 / (1 + in-memory rate / read-only rate). An estimate, not a bound: training
            // may leave CPU idle that the reading fills.
            readOnly[scale] = await ReadOnlyRateAsync(rig, uncached, manifest, windowBytes).ConfigureAwait(false);
            streamed[scale] = (BenchStats.Median(streamRates), streamed[scale].PeakMiB);
            inMemory[scale] = (BenchStats.Median(memoryRates), inMemory[scale].PeakMiB);
            ratios[scale] = BenchStats.Median(roundRatios);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {scale}x: streamed {streamed[scale].Rate:F1} (without the cache {uncachedRates[scale].Rate:F1}) vs in memory {inMemory[scale].Rate:F1} "
                    + $"samples/s (medians of {rounds} interleaved rounds); " +
                $"ratio {ratios[scale]:F3}, without the cache {uncachedRates[scale].Ratio:F3} (medians of the rounds' ratios); " +
                $"reading alone {readOnly[scale]:F1} samples/s ({IfReadingAddsUp(inMemory[scale].Rate, readOnly[scale]):F3} if reading and training added "
                    + $"up)"));
        }
        foreach (var (scale, _, samples) in runs)
        {
            result[$"{scale}x"] = new JsonObject
            {
                ["samples"] = samples,
                ["streamed_samples_per_s"] = streamed[scale].Rate,
                ["in_memory_samples_per_s"] = inMemory[scale].Rate,
                ["ratio"] = ratios[scale],
                ["uncached_samples_per_s"] = uncachedRates[scale].Rate,
                ["uncached_ratio"] = uncachedRates[scale].Ratio,
                ["cached_fraction"] = Math.Min(1.0, cacheBytes / (4.0 * samples * (model.CutShape.Aggregate(1L, (a, b) => a * b) + 1))),
                ["read_only_samples_per_s"] = readOnly[scale],
                ["ratio_if_reading_adds_to_training"] = IfReadingAddsUp(inMemory[scale].Rate, readOnly[scale]),
                ["streamed_peak_rss_mib"] = Math.Round(streamed[scale].PeakMiB, 1),
                ["in_memory_peak_rss_mib"] = Math.Round(inMemory[scale].PeakMiB, 1),
                ["streamed_managed_peak_mib"] = Math.Round(memory[(scale, "streamed")].ManagedPeakMiB, 1),
                ["streamed_allocated_mib_per_epoch"] = Math.Round(memory[(scale, "streamed")].AllocatedMiBPerEpoch, 1),
            };
        }
        var first = scales[0];
        var last = scales[^1];
        result["ratio"] = ratios[first];
        result["ratio_at_largest"] = ratios[last];
        result["uncached_ratio"] = uncachedRates[first].Ratio;
        result["uncached_ratio_at_largest"] = uncachedRates[last].Ratio;
        result["streamed_rss_growth_mib"] = Math.Round(streamed[last].PeakMiB - streamed[first].PeakMiB, 1);
        result["streamed_rss_growth_fraction"] = Math.Round(streamed[last].PeakMiB / streamed[first].PeakMiB - 1, 3);
        result["in_memory_rss_growth_mib"] = Math.Round(inMemory[last].PeakMiB - inMemory[first].PeakMiB, 1);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Key} = {ratios[first]:F3} at {first}x, {ratios[last]:F3} at {last}x (target >= 0.95; without the cache {uncachedRates[first].Ratio:F3}, "
                + $"{uncachedRates[last].Ratio:F3}); " +
            $"peak RSS streamed {streamed[first].PeakMiB:F0} -> {streamed[last].PeakMiB:F0} MiB, in memory {inMemory[first].PeakMiB:F0} -> "
                + $"{inMemory[last].PeakMiB:F0} MiB; " +
            $"{model.Name} batch {batch}, window {windowBytes >> 20} MiB, cache {cacheBytes >> 20} MiB; {BenchStats.Machine(threads)}"));
        BenchResults.Merge(Key, result, options.ResultsPath);
        return 0;
    }

    /// <summary>What one side's epochs cost in memory: peak RSS, the managed heap's peak commit, and bytes allocated per epoch.</summary>
    internal sealed record MemoryFigures(double PeakMiB, double ManagedPeakMiB, double AllocatedMiBPerEpoch, int Gen2Collections);

    // Median epoch samples/s over the rounds (after one warm-up epoch), and what the epochs cost in memory.
    private static async Task<(double Rate, MemoryFigures Memory)> MeasureAsync(SplitRig rig, RunManifest manifest, int rounds,
        Func<LeasedRun, int, Task<int>> epoch)
    {
        return await rig.UnderRunGateAsync(manifest.RunId, async session =>
        {
            // Aggressive: also hands back the memory the runtime keeps mapped for reuse (RetainVM), so what the previous phase
            // (the upload, the other scale) left behind is not counted as this side's peak.
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            PeakMemory.Reset();
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var gen2Before = GC.CollectionCount(2);
            // The managed heap's commit, sampled: with the peak RSS it tells managed buffers from native (libtorch) memory.
            long managedPeak = 0;
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    managedPeak = Math.Max(managedPeak, GC.GetGCMemoryInfo().TotalCommittedBytes);
                    await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
                }
            });
            await epoch(session, 0).ConfigureAwait(false);
            var rates = new List<double>();
            for (var round = 1; round <= rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                var seen = await epoch(session, round).ConfigureAwait(false);
                rates.Add(seen / clock.Elapsed.TotalSeconds);
            }
            var peak = PeakMemory.PeakBytes() / 1048576.0;
            await sampling.CancelAsync().ConfigureAwait(false);
            await sampler.ConfigureAwait(false);
            var allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / 1048576.0 / (rounds + 1);
            return (BenchStats.Median(rates), new MemoryFigures(peak, managedPeak / 1048576.0, allocated, GC.CollectionCount(2) - gen2Before));
        }).ConfigureAwait(false);
    }

    private static string Describe(MemoryFigures m) => string.Create(CultureInfo.InvariantCulture,
        $"peak RSS {m.PeakMiB:F0} MiB (managed heap committed at most {m.ManagedPeakMiB:F0} MiB), {m.AllocatedMiBPerEpoch:F0} MiB allocated per epoch, "
            + $"{m.Gen2Collections} gen-2 collections");

    private static double IfReadingAddsUp(double inMemoryRate, double readOnlyRate) => 1 / (1 + inMemoryRate / readOnlyRate);

    // One epoch's windows read (downloaded, decrypted, decoded) and not trained on: samples/s of the reading alone.
    private static async Task<double> ReadOnlyRateAsync(SplitRig rig, TemporalFeatureStream stream, RunManifest manifest, long windowBytes)
    {
        return await rig.UnderRunGateAsync(manifest.RunId, async session =>
        {
            var clock = Stopwatch.StartNew();
            long seen = 0;
            await foreach (var (window, _) in stream.ReadEpochAsync(session, 0, windowBytes, CancellationToken.None)
                .ConfigureAwait(false)) seen += window.Count;
            return seen / clock.Elapsed.TotalSeconds;
        }).ConfigureAwait(false);
    }

    private static async Task<int> StreamedEpochAsync(TemporalFeatureStream stream, LeasedRun session, int epoch, long windowBytes) =>
        (await session.Model.TrainEpochAsync(stream.ReadEpochAsync(session, epoch, windowBytes, CancellationToken.None), CancellationToken.None)
            .ConfigureAwait(false)).Samples;

    // Per round one epoch of each (cached stream, uncached stream, in memory), the order rotating round by round, after one
    // unmeasured epoch of the cached stream that fills its cache; samples/s of each and their ratios to in-memory.
    private static async Task<(List<double> Streamed, List<double> Uncached, List<double> InMemory, List<double> Ratios,
        List<double> UncachedRatios)> InterleavedAsync(
        SplitRig rig, RunManifest manifest, int rounds, Func<LeasedRun, int, Task<int>> streamedEpoch, Func<LeasedRun, int, Task<int>> uncachedEpoch,
            Func<LeasedRun, int, Task<int>> inMemoryEpoch)
    {
        return await rig.UnderRunGateAsync(manifest.RunId, async session =>
        {
            await streamedEpoch(session, 0).ConfigureAwait(false);
            Func<LeasedRun, int, Task<int>>[] variants = [streamedEpoch, uncachedEpoch, inMemoryEpoch];
            var rates = variants.Select(_ => new List<double>()).ToArray();
            for (var round = 1; round <= rounds; round++)
            {
                for (var k = 0; k < variants.Length; k++)
                {
                    var v = (k + round) % variants.Length;
                    var clock = Stopwatch.StartNew();
                    var seen = await variants[v](session, round).ConfigureAwait(false);
                    rates[v].Add(seen / clock.Elapsed.TotalSeconds);
                }
            }
            var ratios = rates[0].Zip(rates[2], (a, b) => a / b).ToList();
            var uncachedRatios = rates[1].Zip(rates[2], (a, b) => a / b).ToList();
            return (rates[0], rates[1], rates[2], ratios, uncachedRatios);
        }).ConfigureAwait(false);
    }

    // The previous release's TemporalEpochs.LoadUnionAsync: every chunk decrypted into one set, in (hospital, sequence) order.
    internal static async Task<TrainingSet> LoadUnionAsync(SplitRig rig, LeasedRun session)
    {
        var features = new List<float>();
        var labels = new List<float>();
        foreach (var chunk in session.State.Chunks.OrderBy(c => c.Hospital, StringComparer.Ordinal).ThenBy(c => c.Sequence))
        {
            var tensors = (await rig.Frames.ReadAsync(session.Manifest.RunId, chunk.Hospital, chunk.Sequence, chunk.Blob, chunk.Length, chunk.Sha256,
                chunk.KeyId, CancellationToken.None).ConfigureAwait(false)).Tensors;
            features.AddRange(tensors[0].Values);
            labels.AddRange(tensors[1].Values);
        }
        return new TrainingSet([.. features], [.. labels], session.Model.CutShape);
    }

    // The previous release's ServerModel.TrainEpoch: a global seeded shuffle of the in-memory union, batch by batch.
    internal static int InMemoryEpoch(LeasedRun session, TrainingSet union, int epoch)
    {
        var batch = session.Manifest.BatchSize;
        var features = new float[batch * union.SampleSize];
        var labels = new float[batch];
        var seen = 0;
        foreach (var b in BatchOrder.Batches(BatchOrder.Shuffle(union.Count, session.Manifest.Seed, epoch), batch))
        {
            union.Gather(b, features, labels);
            session.Model.TrainStepNoReply(features.AsSpan(0, b.Count * union.SampleSize), labels.AsSpan(0, b.Count), b.Count);
            seen += b.Count;
        }
        return seen;
    }
}

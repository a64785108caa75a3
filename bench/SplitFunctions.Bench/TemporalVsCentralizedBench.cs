using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Contract;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Keys;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Runs;
using SplitFunctions.Core.Storage;
using SplitFunctions.Functions.Hosting;
using SplitFunctions.Functions.Runs;
using SplitFunctions.Functions.Steps;

namespace SplitFunctions.Bench;

/// <summary>
/// temporal_vs_centralized: samples/s of a temporal-mode server epoch as the function runs it (features streamed from
/// their sealed chunks on Azurite, decrypted a window ahead, ServerModel.TrainEpochAsync) over samples/s of a
/// centralised epoch of the whole network in process (SplitModel.TrainStep on the raw inputs), same samples, batch and
/// threads, rounds interleaved.
/// </summary>
public static class TemporalVsCentralizedBench
{
    public const string Key = "temporal_vs_centralized";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = BenchOptions.Parse(args);
        var models = options.Get("models", "covid-ct-cnn,ldl-mlp").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var rounds = options.GetInt("rounds", 5, 1);
        var threads = options.GetInt("threads", Environment.ProcessorCount);
        TorchRuntime.Threads = threads;

        await using var rig = await SplitRig.StartAsync().ConfigureAwait(false);
        var result = new JsonObject
        {
            ["target"] = ">= 0.95",
            ["threads"] = threads,
            ["rounds"] = rounds,
            ["baseline"] = "centralised training of the whole network (client + server layers) on the raw inputs, SplitModel.TrainStep: " +
                           "the alternative a user weighs temporal split learning against; temporal trains only the server layers on fixed features, " +
                           "so it does less work per sample and a ratio above 1 is expected",
        };
        foreach (var modelName in models)
        {
            var model = ModelCatalog.Get(modelName);
            // Sixteen batches per epoch by default; --samples-<model> to change.
            var samples = options.GetInt("samples-" + model.Name, model.BatchSize * 16, 128);
            result[model.Name] = await MeasureAsync(rig, model, samples, rounds, threads, options.Smoke).ConfigureAwait(false);
        }
        var headline = result[models[0]]!["ratio"]!.GetValue<double>();
        result["ratio"] = headline;
        Console.WriteLine($"{Key} = {headline:F3} ({models[0]}; {BenchStats.Machine(threads)}; target >= 0.95)");
        BenchResults.Merge(Key, result, options.ResultsPath);
        return 0;
    }

    private static async Task<JsonObject> MeasureAsync(SplitRig rig, ModelDefinition model, int samples, int rounds, int threads, bool smoke)
    {
        var batch = smoke ? Math.Min(model.BatchSize, 64) : model.BatchSize;
        var tag = model.Name.Split('-')[0];
        var manifest = RunManifest.ForModel("temporal-" + tag, model, TrainingMode.Temporal, ["t-" + tag], seed: 7) with { BatchSize = batch };
        await rig.ProvisionAsync(manifest).ConfigureAwait(false);
        var data = BenchHospital.SyntheticData(manifest, samples, salt: 3);
        await UploadFeaturesAsync(rig, manifest, data, chunk: Math.Max(batch, 256)).ConfigureAwait(false);

        return await rig.UnderRunGateAsync(manifest.RunId, async session =>
        {
            using var centralised = SplitModel.Create(model, manifest.Seed);
            var x = new float[batch * data.SampleSize];
            var y = new float[batch];
            double CentralisedEpoch(int epoch)
            {
                var clock = Stopwatch.StartNew();
                foreach (var b in BatchOrder.Batches(BatchOrder.Shuffle(data.Count, manifest.Seed, epoch), batch))
                {
                    data.Gather(b, x, y);
                    centralised.TrainStep(x.AsSpan(0, b.Count * data.SampleSize), y.AsSpan(0, b.Count), b.Count);
                }
                return data.Count / clock.Elapsed.TotalSeconds;
            }
            double TemporalEpoch(int epoch)
            {
                var clock = Stopwatch.StartNew();
                var (_, seen) = session.Model.TrainEpochAsync(rig.Stream.ReadEpochAsync(session, epoch, TemporalFeatureStream.DefaultWindowBytes,
                    CancellationToken.None), CancellationToken.None)
                    .GetAwaiter().GetResult();
                if (seen != samples) throw new InvalidOperationException($"a temporal epoch saw {seen} samples, {samples} were uploaded");
                return seen / clock.Elapsed.TotalSeconds;
            }

            // The limit: the server layers' epoch on the same features already decrypted in memory (what streaming from
            // storage could at best reach), interleaved with the two sides.
            var union = await TemporalStreamingBench.LoadUnionAsync(rig, session).ConfigureAwait(false);
            double InMemoryEpoch(int epoch)
            {
                var clock = Stopwatch.StartNew();
                var seen = TemporalStreamingBench.InMemoryEpoch(session, union, epoch);
                return seen / clock.Elapsed.TotalSeconds;
            }

            CentralisedEpoch(0);
            TemporalEpoch(0);
            InMemoryEpoch(0);
            var temporal = new List<double>();
            var central = new List<double>();
            var inMemory = new List<double>();
            for (var round = 0; round < rounds; round++)
            {
                if (round % 2 == 0)
                {
                    temporal.Add(TemporalEpoch(round + 1));
                    central.Add(CentralisedEpoch(round + 1));
                    inMemory.Add(InMemoryEpoch(round + 1));
                }
                else
                {
                    inMemory.Add(InMemoryEpoch(round + 1));
                    central.Add(CentralisedEpoch(round + 1));
                    temporal.Add(TemporalEpoch(round + 1));
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {model.Name} round {round + 1}/{rounds}: temporal epoch {temporal[^1]:F1} samples/s, centralised {central[^1]:F1}, in-memory server "
                        + $"epoch {inMemory[^1]:F1}; ratio {temporal[^1] / central[^1]:F3} ({BenchStats.Machine(threads)})"));
            }
            var limit = BenchStats.Median(inMemory.Zip(central, (m, c) => m / c).ToList());
            var ratios = temporal.Zip(central, (t, c) => t / c).ToList();
            var ratio = BenchStats.Median(ratios);
            var temporalRate = BenchStats.Median(temporal);
            var centralRate = BenchStats.Median(central);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{model.Name} batch {batch}, {samples} samples: ratio {ratio:F3} of a {limit:F3} limit (temporal {temporalRate:F1} / centralised "
                    + $"{centralRate:F1} samples/s, chunks streamed and decrypted every epoch; limit: the server epoch on features in memory); "
                    + $"{BenchStats.Machine(threads)}"));
            return new JsonObject
            {
                ["ratio"] = ratio,
                ["batch"] = batch,
                ["samples"] = samples,
                ["temporal_samples_per_s"] = temporalRate,
                ["centralized_samples_per_s"] = centralRate,
                ["in_memory_server_samples_per_s"] = BenchStats.Median(inMemory),
                ["limit"] = limit,
                ["limit_is"] = "the server layers' epoch on the same features decrypted once into memory, over the centralised epoch: the ratio if streaming "
                    + "cost nothing",
                ["round_ratios"] = new JsonArray([.. ratios.Select(r => JsonValue.Create(r))]),
            };
        }).ConfigureAwait(false);
    }

    // What the agent's TemporalUploader does: the fixed client layer's features in sealed chunks, each indexed by the function.
    internal static async Task UploadFeaturesAsync(SplitRig rig, RunManifest manifest, TrainingSet data, int chunk)
    {
        var hospital = manifest.Hospitals[0];
        var keyId = rig.Keys.GetCurrentKeyId(hospital)!;
        using var client = ClientLayer.Create(manifest, trainable: false, secret: null);
        long sequence = 0;
        for (var start = 0; start < data.Count; start += chunk)
        {
            var n = Math.Min(chunk, data.Count - start);
            var indices = Enumerable.Range(start, n).ToArray();
            using var activations = client.Forward(data, indices, train: false, out var targets);
            var (blob, length, sha, _) = await rig.Frames.WriteAsync(manifest.RunId, hospital, sequence, PayloadKind.Features, keyId, manifest.FeatureType,
                [(activations.ToFloats(), activations.shape), (targets, [n, 1])], CancellationToken.None).ConfigureAwait(false);
            var text = MessageCodec.Serialize(MessageAuthentication.Sign(new FrameMessage
            {
                RunId = manifest.RunId,
                HospitalId = hospital,
                Sequence = sequence,
                Kind = FrameKind.Chunk,
                Blob = blob,
                Length = length,
                Sha256 = sha,
                ReplyQueue = StorageNames.RepliesQueue(hospital),
                KeyId = keyId,
            }, rig.Keys.GetKey(hospital, keyId)));
            var outcome = await rig.Router.ProcessAsync(text, 1, CancellationToken.None).ConfigureAwait(false);
            if (outcome.Kind != Functions.Hosting.OutcomeKind.Completed) throw new InvalidOperationException($"chunk {sequence} was not indexed: "
                + $"{outcome.Detail}");
            sequence++;
        }
    }
}

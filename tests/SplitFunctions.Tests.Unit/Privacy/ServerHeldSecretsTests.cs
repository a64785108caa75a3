using SplitFunctions.ClientAgent;
using SplitFunctions.ClientAgent.Configuration;
using SplitFunctions.ClientAgent.Output;
using SplitFunctions.ClientAgent.Training;
using SplitFunctions.Core.Audit;
using SplitFunctions.Core.Consortium;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;

namespace SplitFunctions.Tests.Privacy;

/// <summary>libtorch's generator is process-wide: other tests drawing from it in parallel would change the weights compared here, so these run alone.</summary>
[CollectionDefinition(nameof(ServerHeldSecretsTests), DisableParallelization = true)]
public sealed class ServerHeldSecretsCollection;

/// <summary>
/// Issue 15, item 1: what the function holds (the manifest with its seed and commitment, hospital ids, sequence
/// numbers) does not let it rebuild the hospitals' initial client weights or the noise on their activations.
/// </summary>
[Collection(nameof(ServerHeldSecretsTests))]
public sealed class ServerHeldSecretsTests
{
    private static readonly string[] Hospitals = ["hospital-a", "hospital-b"];

    private static RunManifest Manifest(ConsortiumSecret? secret, TrainingMode mode = TrainingMode.Temporal) =>
        RunManifest.ForModel("run-privacy", ModelCatalog.PneumoniaCnn, mode, Hospitals, 42) with
        {
            Privacy = new PrivacySettings { ConsortiumCommitment = secret?.Commitment },
        };

    private static float[] Weights(Network network) => [.. network.StateNames.SelectMany(n => { using var t = network.GetState(n); return t.ToFloats(); })];

    [Fact]
    public void InitialClientWeights_AreEqualAtEveryHospitalOfTheConsortium_AndNoneOfTheServersGuessesRebuildsThem()
    {
        var secret = ConsortiumSecret.Create();
        var manifest = Manifest(secret);
        RunManifest.Parse(manifest.ToJson()).Privacy.ConsortiumCommitment.Should().Be(secret.Commitment);
        using var a = ClientLayer.Create(manifest, trainable: false, ConsortiumSecret.FromBytes(SecretBytes(secret)));
        using var b = ClientLayer.Create(manifest, trainable: false, secret);
        var hospital = Weights(a.Network);
        Weights(b.Network).Should().Equal(hospital, "hospitals holding the same secret start from the same privacy layer");

        // Every seed the function could form from what it holds: the manifest seed (the old derivation), the seed
        // mixed with each hospital id's hash, the sequence numbers, and the commitment's bytes read as a seed.
        var commitment = Convert.FromHexString(manifest.Privacy.ConsortiumCommitment!);
        var guesses = new List<ulong> { manifest.Seed, BitConverter.ToUInt64(commitment, 0), BitConverter.ToUInt64(commitment, 8),
            BitConverter.ToUInt64(commitment, 24) };
        guesses.AddRange(Hospitals.Select(h => manifest.Seed ^ Fnv1a(h)));
        guesses.AddRange(Enumerable.Range(0, 8).Select(s => manifest.Seed + (ulong)s));
        foreach (var guess in guesses)
        {
            using var rebuilt = TorchRuntime.Seeded(guess, () => manifest.ModelDefinition.BuildClient());
            Weights(rebuilt).Should().NotEqual(hospital, $"seed {guess} is something the function holds");
        }

        // Without the secret the agent falls back to the public seed: exactly what the server could rebuild.
        using var publicLayer = ClientLayer.Create(Manifest(null), trainable: false, secret: null);
        using var serverCopy = TorchRuntime.Seeded(42, () => ModelCatalog.PneumoniaCnn.BuildClient());
        Weights(serverCopy).Should().Equal(Weights(publicLayer.Network));
        // Another consortium's secret gives another layer.
        using var other = ClientLayer.Create(manifest, trainable: false, ConsortiumSecret.Create());
        Weights(other.Network).Should().NotEqual(hospital);
    }

    [Fact]
    public void Noise_IsFreshForEveryValueSent_AndTheOldSeededGeneratorCannotPredictIt()
    {
        const int n = 20000;
        var first = new float[n];
        var second = new float[n];
        ActivationNoise.Add(first, 0.5);
        ActivationNoise.Add(second, 0.5);
        first.Should().NotEqual(second, "the same activations sent twice carry independent noise");
        var mean = first.Average();
        var std = Math.Sqrt(first.Select(v => (v - mean) * (v - mean)).Average());
        mean.Should().BeInRange(-0.02f, 0.02f);
        std.Should().BeInRange(0.48, 0.52);

        // The generator the function could reseed (manifest seed ^ hospital hash ^ sequence): uncorrelated with the noise.
        foreach (var sequence in Enumerable.Range(0, 4))
        {
            var random = new SeededRandom(unchecked((long)(42UL ^ Fnv1a("hospital-a") ^ ((ulong)sequence * 0x9E3779B97F4A7C15UL))));
            var guess = Enumerable.Range(0, n).Select(_ => 0.5 * random.NextGaussian()).ToArray();
            var correlation = first.Zip(guess, (x, y) => x * y).Average() / (std * 0.5);
            Math.Abs(correlation).Should().BeLessThan(0.05, "subtracting a regenerated stream must not remove the noise");
        }
    }

    [Fact]
    public void AnAgentWhoseSecretDiffersFromTheManifestsCommitment_StopsWithOneClearLine()
    {
        var folder = Directory.CreateTempSubdirectory("consortium-");
        try
        {
            var path = Path.Combine(folder.FullName, "consortium.secret");
            var mine = ConsortiumSecret.Create();
            mine.Save(path);
            ConsortiumSecret.Load(path).Commitment.Should().Be(mine.Commitment);
            var output = new LogLineOutput(TextWriter.Null, TextWriter.Null, 10);
            var config = Config(path);

            HospitalRun.LoadConsortiumSecret(config, Manifest(mine), output)!.Commitment.Should().Be(mine.Commitment);

            var mismatch = () => HospitalRun.LoadConsortiumSecret(config, Manifest(ConsortiumSecret.Create()), output);
            mismatch.Should().Throw<AgentException>()
                .Where(e => e.Code == ExitCode.Configuration && e.Message.Contains("does not match run 'run-privacy'") && !e.Message.Contains('\n'));
            var missing = () => HospitalRun.LoadConsortiumSecret(config with { ConsortiumSecretFile = null }, Manifest(mine), output);
            missing.Should().Throw<AgentException>().Where(e => e.Message.Contains("expects the consortium secret"));
            var noCommitment = () => HospitalRun.LoadConsortiumSecret(config, Manifest(null), output);
            noCommitment.Should().Throw<AgentException>().Where(e => e.Code == ExitCode.Manifest);
            File.WriteAllText(path + ".bad", "not a secret\n");
            var bad = () => HospitalRun.LoadConsortiumSecret(config with { ConsortiumSecretFile = path + ".bad" }, Manifest(mine), output);
            bad.Should().Throw<AgentException>().Where(e => e.Message.Contains("is not a consortium secret file"));
            var saveAgain = () => mine.Save(path);
            saveAgain.Should().Throw<IOException>("a secret file is never overwritten");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Manifest_RejectsAMalformedCommitment()
    {
        var bad = Manifest(null) with { Privacy = new PrivacySettings { ConsortiumCommitment = "abc" } };
        var parse = () => RunManifest.Parse(bad.ToJson());
        parse.Should().Throw<RunManifestException>().WithMessage("*consortiumCommitment*");
    }

    private static AgentConfiguration Config(string secretFile) => new()
    {
        HospitalId = "hospital-a",
        RunId = "run-privacy",
        Storage = new StorageSettings { ConnectionString = "UseDevelopmentStorage=true" },
        Key = new KeySettings { Directory = "keys", KeyId = "k1" },
        Data = new DataSettings { Path = "data.npz", Kind = DataKinds.ImagesNpz },
        StateFolder = "state",
        ConsortiumSecretFile = secretFile,
    };

    private static byte[] SecretBytes(ConsortiumSecret secret)
    {
        // Round trip through the file format: the copy another hospital receives at onboarding.
        var path = Path.Combine(Path.GetTempPath(), $"secret-{Guid.NewGuid():N}");
        try
        {
            secret.Save(path);
            return Convert.FromBase64String(File.ReadAllLines(path)[1]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }
}

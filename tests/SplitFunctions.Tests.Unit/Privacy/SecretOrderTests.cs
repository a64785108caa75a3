using SplitFunctions.Core.Data;
using SplitFunctions.Core.Privacy;

namespace SplitFunctions.Tests.Privacy;

/// <summary>
/// Issue 29, item 2: the order a hospital sends its samples in (training batches per epoch, validation and evaluation
/// passes, temporal chunks) comes from a secret only it holds, so the server cannot line up one patient's views
/// across epochs, and a restarted agent reproduces the order exactly.
/// </summary>
public sealed class SecretOrderTests
{
    private const int Samples = 500;
    private const ulong ManifestSeed = 42;
    private const string Run = "run-order";

    [Fact]
    public void Two_hospitals_with_the_same_manifest_send_in_different_orders_that_no_seed_the_server_holds_gives()
    {
        using var a = new TempDirectory();
        using var b = new TempDirectory();
        var hospitalA = OrderSecret.LoadOrCreate(a.Path);
        var hospitalB = OrderSecret.LoadOrCreate(b.Path);
        for (var epoch = 0; epoch < 4; epoch++)
        {
            var orderA = hospitalA.Order(Samples, Run, "train", epoch);
            var orderB = hospitalB.Order(Samples, Run, "train", epoch);
            orderA.Order().Should().Equal(Enumerable.Range(0, Samples), "an order is a permutation of the samples");
            orderA.Should().NotEqual(orderB, "hospitals sharing a manifest do not share an order");
            // Everything the server could seed a shuffle with: the manifest seed, mixed with each hospital's id hash (the old
            // derivation), the run's other numbers. None gives the order, nor even agrees with it beyond chance.
            foreach (var guess in ServerSeeds())
            {
                var server = BatchOrder.Shuffle(Samples, guess, epoch);
                server.Should().NotEqual(orderA);
                server.Zip(orderA).Count(p => p.First == p.Second).Should().BeLessThan(10, "a guess places about one sample right by chance");
            }
        }
        hospitalA.Order(Samples, Run, "train", 0).Should().NotEqual(hospitalA.Order(Samples, Run, "train", 1), "each epoch has a fresh order");
        hospitalA.Order(Samples, Run, "validation", 7).Should().NotEqual(hospitalA.Order(Samples, Run, "validation", 19), "so has each validation pass");
        hospitalA.Order(Samples, "run-other", "train", 0).Should().NotEqual(hospitalA.Order(Samples, Run, "train", 0));
    }

    [Fact]
    public void A_sample_s_position_in_one_epoch_says_nothing_about_its_position_in_the_next()
    {
        var secret = OrderSecret.Create();
        var first = Positions(secret.Order(Samples, Run, "train", 0));
        var second = Positions(secret.Order(Samples, Run, "train", 1));
        // Rank correlation of each sample's position (its batch) across epochs: about 0 +- 1/sqrt(N) for independent orders.
        var mean = (Samples - 1) / 2.0;
        var covariance = first.Zip(second, (x, y) => (x - mean) * (y - mean)).Average();
        var variance = first.Select(x => (x - mean) * (x - mean)).Average();
        Math.Abs(covariance / variance).Should().BeLessThan(0.15);
    }

    [Fact]
    public void A_restarted_agent_reads_the_same_secret_and_reproduces_the_epoch_s_order()
    {
        using var state = new TempDirectory();
        var before = OrderSecret.LoadOrCreate(state.Path).Order(Samples, Run, "train", 3);
        var path = System.IO.Path.Combine(state.Path, OrderSecret.FileName);
        var bytes = File.ReadAllBytes(path);
        if (!OperatingSystem.IsWindows()) File.GetUnixFileMode(path).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, "owner-only, like the key");

        var after = OrderSecret.LoadOrCreate(state.Path).Order(Samples, Run, "train", 3);
        after.Should().Equal(before, "the order is a function of the secret, run, purpose and pass");
        File.ReadAllBytes(path).Should().Equal(bytes, "a secret once written is never replaced");
        Directory.GetFiles(state.Path).Should().ContainSingle("no temporary file is left behind");

        File.WriteAllText(path, "splitfn-order-secret-v1\nnot base64\n");
        var damaged = () => OrderSecret.LoadOrCreate(state.Path);
        damaged.Should().Throw<InvalidDataException>().WithMessage("*order secret*");
    }

    [Fact]
    public void The_keyed_shuffle_is_uniform()
    {
        // Every element lands in every position equally often: 30,000 shuffles of 5, each count within 5 sigma of 6,000.
        var counts = new int[5, 5];
        var key = new byte[32];
        for (var t = 0; t < 30000; t++)
        {
            BitConverter.TryWriteBytes(key, t);
            var order = BatchOrder.Shuffle(5, key);
            for (var position = 0; position < 5; position++) counts[order[position], position]++;
        }
        foreach (var count in counts) count.Should().BeInRange(6000 - 350, 6000 + 350);
    }

    private static IEnumerable<ulong> ServerSeeds()
    {
        yield return ManifestSeed;
        foreach (var hospital in new[] { "hospital-a", "hospital-b" }) yield return ManifestSeed ^ Fnv1a(hospital);
        for (ulong s = 0; s < 4; s++) yield return s;
    }

    private static int[] Positions(int[] order)
    {
        var positions = new int[order.Length];
        for (var i = 0; i < order.Length; i++) positions[order[i]] = i;
        return positions;
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

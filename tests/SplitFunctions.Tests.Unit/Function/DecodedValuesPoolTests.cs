using SplitFunctions.Functions.Runs;

namespace SplitFunctions.Tests.Function;

/// <summary>The arrays a vanilla step's frames are decoded into: exact lengths, reused once handed back, bounded.</summary>
public sealed class DecodedValuesPoolTests
{
    [Fact]
    public void A_handed_back_array_is_the_next_one_of_its_length_and_never_of_another()
    {
        var pool = new DecodedValuesPool();
        var first = pool.Rent(1000);
        first.Should().HaveCount(1000, "decoded tensors keep their array's length as their element count");
        pool.Return(first);
        pool.Rent(999).Should().NotBeSameAs(first).And.HaveCount(999);
        pool.Rent(1000).Should().BeSameAs(first);
        pool.Rent(1000).Should().NotBeSameAs(first, "an array is rented once until it comes back");
    }

    [Fact]
    public void An_array_handed_back_twice_is_kept_once()
    {
        var pool = new DecodedValuesPool();
        var array = pool.Rent(16);
        pool.Return(array, array);
        pool.Return(array);
        pool.Count.Should().Be(1);
        pool.Rent(16).Should().BeSameAs(array);
        pool.Rent(16).Should().NotBeSameAs(array, "two frames must never share one array");
    }

    [Fact]
    public void Keeps_at_most_its_count_and_bytes_and_lengths_no_longer_read_make_room()
    {
        var pool = new DecodedValuesPool(maxArrays: 3, maxBytes: 4 * 1000);
        pool.Return(new float[100], new float[100], new float[100], new float[100]);
        pool.Count.Should().Be(3);
        pool.Return(new float[2000]);
        pool.Count.Should().Be(3, "an array over the byte bound is left to the collector");

        var wide = new float[900];
        pool.Return(wide);
        pool.Count.Should().Be(1, "the 100-value arrays made room for the length now read");
        pool.Rent(900).Should().BeSameAs(wide);
        pool.Count.Should().Be(0);
    }
}

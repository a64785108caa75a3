using SplitFunctions.ClientAgent.Wire;

namespace SplitFunctions.Tests.Agent;

/// <summary>The agent's reply polling: short sleeps while a running function would answer, a slow poll for a cold one.</summary>
public sealed class ReplyPollingTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Theory]
    [InlineData(0)]
    [InlineData(600)]
    [InlineData(2_000)]
    [InlineData(29_000)]
    public void While_a_step_could_still_be_running_no_sleep_overshoots_by_more_than_the_cap(double waitedMs)
    {
        var random = new Random(1);
        for (var i = 0; i < 200; i++)
        {
            ReplyPolling.Default.Next(Ms(waitedMs), random).Should().BeLessThanOrEqualTo(Ms(50), "40 ms plus a quarter of jitter");
        }
        // The rule before: an eighth of the wait, so a 2 s wait (three hospitals sharing a server) slept 250 ms between looks.
        if (waitedMs >= 2_000) ReplyPolling.Backoff.Next(Ms(waitedMs)).Should().BeGreaterThanOrEqualTo(Ms(250));
    }

    [Fact]
    public void Sleeps_grow_from_a_few_milliseconds_with_the_wait()
    {
        var random = new Random(2);
        ReplyPolling.Default.Next(TimeSpan.Zero, random).Should().BeLessThanOrEqualTo(Ms(7));
        ReplyPolling.Default.Next(Ms(160), random).TotalMilliseconds.Should().BeInRange(15, 25);
    }

    [Fact]
    public void A_cold_function_is_polled_about_once_a_second_and_sleeps_vary_so_hospitals_do_not_poll_in_step()
    {
        var random = new Random(3);
        var sleeps = Enumerable.Range(0, 100).Select(_ => ReplyPolling.Default.Next(TimeSpan.FromMinutes(2), random)).ToList();
        sleeps.Should().OnlyContain(s => s >= Ms(750) && s <= Ms(1250));
        sleeps.Distinct().Count().Should().BeGreaterThan(50);
    }

    [Fact]
    public void Looks_in_a_ten_minute_wait_stay_bounded()
    {
        // The cost of an idle queue: every look is one receive request.
        var random = new Random(4);
        var waited = TimeSpan.Zero;
        var looks = 0;
        while (waited < TimeSpan.FromMinutes(10))
        {
            waited += ReplyPolling.Default.Next(waited, random);
            looks++;
        }
        looks.Should().BeLessThan(1_000 + 600, "at most about 25 looks a second for 30 s, then about one a second");
    }
}

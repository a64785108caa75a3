using FluentAssertions;
using SplitFunctions.Core.Model;
using Xunit;

namespace SplitFunctions.Tests.Engine;

/// <summary>The thread count is process-wide state that the function's composition and the benchmarks also set, so these run alone.</summary>
[CollectionDefinition(nameof(ThreadCountTests), DisableParallelization = true)]
public sealed class ThreadCountCollection;

[Collection(nameof(ThreadCountTests))]
public sealed class ThreadCountTests
{
    [Fact]
    public void ThreadCount_DefaultsToProcessorCount_AndIsConfigurable()
    {
        TorchRuntime.DefaultThreads.Should()
            .Be(int.TryParse(Environment.GetEnvironmentVariable("SPLITFN_THREADS"), out var t) && t > 0 ? t : Environment.ProcessorCount);
        var original = TorchRuntime.Threads;
        try
        {
            TorchRuntime.Threads = 1;
            TorchRuntime.Threads.Should().Be(1);
            TorchRuntime.Threads = 2;
            TorchRuntime.Threads.Should().Be(2);
        }
        finally
        {
            TorchRuntime.Threads = original;
        }
        var act = () => TorchRuntime.Threads = 0;
        act.Should().Throw<ArgumentOutOfRangeException>();
    }
}

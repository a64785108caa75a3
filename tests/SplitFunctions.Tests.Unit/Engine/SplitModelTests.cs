using FluentAssertions;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Model;
using Xunit;
using static TorchSharp.torch;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// The in-process baseline runs the function's server step (<see cref="ServerModel"/>) between the client part's forward
/// and backward: bit for bit the joint step of both parts with one backward pass through the whole network. Alone (no
/// other test at once), as the other bit-for-bit engine tests: a thread count changed meanwhile changes the rounding.
/// The test also pins libtorch's thread count for its duration (and restores it), so both sides run under the same count
/// whatever count the process was left with: the comparison stays exact rather than a tolerance, which could hide a real
/// difference between the two steps.
/// </summary>
[Collection(nameof(ThreadCountTests))]
public sealed class SplitModelTests
{
    [Theory]
    [InlineData("pneumonia-cnn")]
    [InlineData("ldl-mlp")]
    public void A_step_through_the_server_step_is_the_joint_step_bit_for_bit(string name)
    {
        var threads = TorchRuntime.Threads;
        TorchRuntime.Threads = PinnedThreads;
        try
        {
            StepsMatch(name);
        }
        finally
        {
            TorchRuntime.Threads = threads;
        }
    }

    /// <summary>The thread count both steps run under: one, so each reduction has one order.</summary>
    private const int PinnedThreads = 1;

    private static void StepsMatch(string name)
    {
        var definition = ModelCatalog.All.Single(m => m.Name == name);
        const ulong seed = 11;
        const int batch = 6;
        using var model = SplitModel.Create(definition, seed);
        using var client = TorchRuntime.Seeded(seed, () => definition.BuildClient());
        using var server = TorchRuntime.Seeded(seed, () => definition.BuildServer(client.OutputShape));
        using var clientOptimizer = Optimizer.Create(client, definition.Optimizer);
        using var serverOptimizer = Optimizer.Create(server, definition.Optimizer);
        var size = (int)definition.InputShape.Aggregate(1L, (a, b) => a * b);

        for (var step = 0; step < 3; step++)
        {
            var features = GoldenValues.Values($"split-model-{name}-{step}", batch * size, 1.0);
            var targets = Enumerable.Range(0, batch).Select(i => (float)((i + step) % 2)).ToArray();
            var loss = model.TrainStep(features, targets, batch);

            using var scope = NewDisposeScope();
            var x = TensorData.FromFloats(features, [batch, .. definition.InputShape]);
            var y = TensorData.FromFloats(targets, [batch, 1]);
            clientOptimizer.ZeroGrad();
            serverOptimizer.ZeroGrad();
            var joint = Loss.Compute(definition.Loss, server.Forward(client.Forward(x, train: true), train: true), y, backward: true);
            serverOptimizer.Step();
            clientOptimizer.Step();
            TorchRuntime.Threads.Should().Be(PinnedThreads, "no other test changes the thread count meanwhile (the collection runs alone)");
            loss.Should().Be(joint, $"step {step}");
        }

        foreach (var (ours, theirs) in new[] { (model.Client, client), (model.Server, server) })
        {
            foreach (var state in ours.StateNames)
            {
                using var a = ours.GetState(state);
                using var b = theirs.GetState(state);
                a.eq(b).all().item<bool>().Should().BeTrue($"{name}: {state} after 3 steps is the joint step's, bit for bit");
            }
        }
    }
}

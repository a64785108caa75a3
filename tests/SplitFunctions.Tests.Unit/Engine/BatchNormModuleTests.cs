using SplitFunctions.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Tests.Engine;

/// <summary>The batch norm the layers build: TorchSharp's arithmetic and state names, its batch count without a temporary Scalar.</summary>
public sealed class BatchNormModuleTests
{
    [Fact]
    public void It_computes_and_names_its_state_as_torchsharps_batch_norm_in_training_and_in_eval()
    {
        using var scope = NewDisposeScope();
        using var ours = new BatchNormModule(3, 4);
        using var theirs = nn.BatchNorm2d(3);
        ours.state_dict().Keys.Should().BeEquivalentTo(theirs.state_dict().Keys);
        // Inputs from System.Random: libtorch's global generator belongs to the tests that seed it (TorchRuntime.Seeded).
        var rng = new Random(4);
        Tensor Random(params long[] shape) =>
            TensorData.FromFloats([.. Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() * 4 - 1))], shape);
        for (var step = 0; step < 3; step++)
        {
            var x = Random(5, 3, 4, 4);
            (ours.forward(x) - theirs.forward(x)).abs().max().item<float>().Should().BeLessThan(1e-5f);
        }
        ours.get_buffer("num_batches_tracked")!.item<long>().Should().Be(3);
        (ours.get_buffer("running_mean")! - theirs.running_mean!).abs().max().item<float>().Should().BeLessThan(1e-6f);
        ours.eval();
        theirs.eval();
        var y = Random(2, 3, 4, 4);
        (ours.forward(y) - theirs.forward(y)).abs().max().item<float>().Should().BeLessThan(1e-5f);
        FluentActions.Invoking(() => ours.forward(Random(3, 4))).Should().Throw<ArgumentException>().WithMessage("*rank 4*");
    }

    // TorchSharp's nn.BatchNorm2d fails this within a second ("For integral input tensors, argument alpha must not be a floating
    // point number", as in a full test run); ours holds the Scalar it counts batches with.
    [Fact]
    public void Training_steps_survive_garbage_collections_running_beside_them()
    {
        using var norm = new BatchNormModule(8, 4);
        using var x = TensorData.FromFloats([.. Enumerable.Range(0, 4 * 8 * 9).Select(i => (float)Math.Sin(i))], [4, 8, 3, 3]);
        using (new CollectionsBeside())
        {
            for (var step = 0; step < 20000; step++)
            {
                using var scope = NewDisposeScope();
                norm.forward(x);
            }
        }
        norm.get_buffer("num_batches_tracked")!.item<long>().Should().Be(20000);
    }
}

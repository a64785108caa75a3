using System.Text.Json;
using System.Text.Json.Serialization;
using SplitFunctions.Core.Baselines;
using SplitFunctions.Core.Data;
using SplitFunctions.Core.Model;
using SplitFunctions.Core.Privacy;
using SplitFunctions.Core.Runs;
using TorchSharp;
using Xunit.Abstractions;

namespace SplitFunctions.Tests.Engine;

/// <summary>
/// Residual blocks and batch norm: the basic block against PyTorch (tests/golden/make_fixtures.py), running statistics
/// in train and eval mode and in saved weights, and the ResNet-18 presets at 28, 64 and 224.
/// </summary>
public sealed class ResidualNetworkTests(ITestOutputHelper output)
{
    // Largest relative error against the PyTorch 1.13 fixture, measured 2026-12-07 on this machine (2 threads): 1.2e-7. The
    // tolerance leaves room for other CPUs' kernel orders (GoldenTests saw 4e-5 between machines on deep conv stacks), far
    // below a real error (a missing shortcut, a wrong stride or running-statistics update moves values by >1e-2).
    private const double Tolerance = 2e-5;

    [Fact]
    public void Basic_blocks_match_PyTorch_forward_input_gradient_one_Adam_step_running_statistics_and_eval_forward()
    {
        var golden = JsonSerializer.Deserialize<GoldenBlocks>(File.ReadAllText(GoldenRun.FixturePath("basic-block.json")))!;
        Layer[] layers = [.. golden.Blocks.Select(b => new BasicBlock(b[0], b[1], b[2]))];
        using var network = Network.Create(layers, golden.InputShape);
        network.StateNames.Should().Contain(["0.conv1.weight", "0.bn1.running_mean", "0.bn1.num_batches_tracked", "0.downsample.0.weight",
            "0.downsample.1.running_var", "1.conv2.weight"], "torchvision's BasicBlock keys");
        network.StateNames.Should().NotContain(n => n.StartsWith("1.downsample", StringComparison.Ordinal), "the second block keeps its input as shortcut");
        network.StateNames.Should().BeEquivalentTo(golden.StateAfterStep.Keys, "the same state dict as PyTorch's");
        foreach (var (name, parameter) in network.Module.named_parameters())
        {
            var key = "block." + name;
            using var value = TensorData.FromFloats(GoldenValues.Values(key, parameter.numel(), GoldenValues.InitBound(parameter.shape)), parameter.shape);
            network.SetState(name, value);
        }
        using var optimizer = Optimizer.Create(network, new OptimizerSettings(OptimizerKind.Adam, golden.LearningRate));
        using var scope = torch.NewDisposeScope();
        long[] shape = [golden.Batch, .. golden.InputShape];
        var x = TensorData.FromFloats(GoldenValues.Values("block-input", shape.Aggregate(1L, (a, b) => a * b), 1.0), shape).requires_grad_();

        optimizer.ZeroGrad();
        var y = network.Forward(x, train: true);
        var g = TensorData.FromFloats(GoldenValues.Values("block-output-gradient", y.numel(), 1.0), y.shape);
        var loss = (y * g).sum();
        loss.backward();
        optimizer.Step();

        var largest = golden.Output.ShouldMatch(y.ToFloats(), y.shape, "training-mode output", Tolerance);
        Math.Abs(loss.item<float>() - golden.Loss).Should().BeLessThanOrEqualTo(Tolerance * Math.Max(1, Math.Abs(golden.Loss)), "loss");
        largest = Math.Max(largest, golden.InputGradient.ShouldMatch(x.grad!.ToFloats(), x.shape, "dL/dx", Tolerance));
        foreach (var (name, sampled) in golden.StateAfterStep)
        {
            using var value = network.GetState(name);
            using var asFloat = value.to_type(torch.ScalarType.Float32);
            largest = Math.Max(largest, sampled.ShouldMatch(asFloat.ToFloats(), value.shape, $"{name} after one Adam step", Tolerance));
        }
        var evaluated = network.Forward(x.detach(), train: false);
        largest = Math.Max(largest, golden.EvalOutput.ShouldMatch(evaluated.ToFloats(), evaluated.shape, "eval-mode output (running statistics)", Tolerance));
        output.WriteLine($"basic blocks: largest relative difference to PyTorch {golden.TorchVersion}: {largest:E2} (tolerance {Tolerance:E0})");
    }

    [Fact]
    public void Batch_norm_running_statistics_move_in_training_only_are_used_in_eval_and_travel_with_the_saved_weights()
    {
        var model = ModelCatalog.ResNet18For28;
        TorchRuntime.Seed(5);
        using var client = model.BuildClient();
        using var scope = torch.NewDisposeScope();
        var x = TensorData.FromFloats(GoldenValues.Values("bn-input", 4 * 28 * 28, 2.0), [4, 1, 28, 28]) + 3;
        using (var initialMean = client.GetState("1.running_mean")) initialMean.abs().max().item<float>().Should().Be(0);

        var evaluatedBefore = client.Forward(x, train: false).ToFloats();
        using (var unchanged = client.GetState("1.running_mean")) unchanged.abs().max().item<float>().Should().Be(0, "eval mode leaves the statistics");
        var peek = client.ForwardTrainingWithoutUpdate(x).ToFloats();
        using (var unchanged = client.GetState("1.running_mean")) unchanged.abs().max().item<float>().Should().Be(0, "a look-ahead pass changes nothing");
        var trained = client.Forward(x, train: true).ToFloats();
        trained.Should().Equal(peek, "the look-ahead is the training-mode output");
        using (var moved = client.GetState("1.running_mean")) moved.abs().max().item<float>().Should().BeGreaterThan(0, "a training batch moves them");
        using (var count = client.GetState("1.num_batches_tracked")) count.item<long>().Should().Be(1);
        var evaluatedAfter = client.Forward(x, train: false).ToFloats();
        evaluatedAfter.Should().NotEqual(evaluatedBefore, "eval mode normalises with the running statistics, which moved");

        // Saved weights (hospital checkpoints, server checkpoints, model exports) carry the running statistics.
        var saved = client.SaveState();
        TorchRuntime.Seed(6);
        using var restored = model.BuildClient();
        restored.LoadState(saved);
        restored.Forward(x, train: false).ToFloats().Should().Equal(evaluatedAfter);
        using (var count = restored.GetState("1.num_batches_tracked")) count.item<long>().Should().Be(1);
    }

    [Theory]
    [InlineData("resnet18-28", new long[] { 64, 28, 28 }, 11_168_257L)]
    [InlineData("resnet18-64", new long[] { 64, 64, 64 }, 11_168_257L)]
    [InlineData("resnet18-224", new long[] { 64, 56, 56 }, 11_170_817L)]
    public void Each_resnet18_preset_runs_forward_and_backward_at_its_input_size(string name, long[] cut, long parameters)
    {
        var model = ModelCatalog.Get(name);
        TorchRuntime.Seed(2);
        var (client, server) = model.BuildSplit();
        using var _c = client;
        using var _s = server;
        client.OutputShape.Should().Equal(cut, "the hospital sends the stem's 64 channels");
        model.CutShape.Should().Equal(cut, "shape arithmetic and libtorch agree");
        // torchvision's resnet18 for one channel and one output (11,689,512 for 3 channels and 1,000 classes), plus the stem's bias.
        (client.ParameterCount + server.ParameterCount).Should().Be(parameters);
        server.Layers.OfType<BasicBlock>().Should().HaveCount(8, "four stages of two basic blocks");

        using var scope = torch.NewDisposeScope();
        const int batch = 2;
        var x = TensorData.FromFloats(GoldenValues.Values("resnet-input", batch * model.InputShape.Aggregate(1L, (a, b) => a * b), 1.0),
            [batch, .. model.InputShape]);
        var a = client.Forward(x, train: true);
        var cutCopy = a.detach().requires_grad_();
        var prediction = server.Forward(cutCopy, train: true);
        prediction.shape.Should().Equal([batch, 1L]);
        var loss = Loss.Compute(model.Loss, prediction, GoldenValues.Targets(true, batch), backward: true);
        a.backward([cutCopy.grad!]);
        double.IsFinite(loss).Should().BeTrue();
        cutCopy.grad!.CountNonFinite().Should().Be(0);
        foreach (var (pname, p) in client.Module.named_parameters())
        {
            p.grad.Should().NotBeNull($"{name} client {pname} gets a gradient through the cut");
            p.grad!.abs().sum().item<float>().Should().BeGreaterThan(0, $"{name} client {pname}");
        }
    }

    [Fact]
    public void A_small_split_training_of_resnet18_28_lowers_the_loss()
    {
        var model = ModelCatalog.ResNet18For28;
        var images = SyntheticImages.Generate(16, 28, 28, seed: 4);
        var statistics = ChannelStatistics.Compute(images);
        statistics.Apply(images);
        var data = new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
        using var split = SplitModel.Create(model, seed: 9);
        var losses = Enumerable.Range(0, 3).Select(epoch => split.TrainEpoch(data, 8, seed: 9, epoch) / data.Count).ToList();
        var shown = losses.Select(l => l.ToString("F4", System.Globalization.CultureInfo.InvariantCulture));
        output.WriteLine($"resnet18-28, 16 synthetic images, batch 8: epoch losses {string.Join(", ", shown)}");
        losses.Should().OnlyContain(l => double.IsFinite(l));
        losses[^1].Should().BeLessThan(losses[0] * 0.9, "three epochs of the split step fit 16 images better");
        var predictions = split.Predict(data);
        predictions.Should().OnlyContain(p => p >= 0 && p <= 1, "eval mode with the running statistics gives probabilities");
    }

    [Fact]
    public void The_ushaped_split_keeps_the_linear_head_at_the_hospital_and_the_blocks_in_the_cloud()
    {
        var model = ModelCatalog.ResNet18For28;
        UShapedSplit.Tail(model).Select(l => l.Spec).Should().Equal("linear in=512 out=1", "sigmoid");
        UShapedSplit.Body(model).OfType<BasicBlock>().Should().HaveCount(8);
        TorchRuntime.Seed(3);
        var (head, body, tail) = UShapedSplit.Build(model);
        using var _h = head;
        using var _b = body;
        using var _t = tail;
        body.OutputShape.Should().Equal([512L]);
    }

    [Fact]
    public void The_stage1_presets_move_two_blocks_to_the_hospital_and_send_the_same_shape()
    {
        foreach (var side in new[] { 28, 64, 224 })
        {
            var stem = ModelCatalog.Get($"resnet18-{side}");
            var stage1 = ModelCatalog.Get($"resnet18-{side}-stage1");
            stage1.ClientLayers.Should().Equal([.. stem.ClientLayers, new BasicBlock(64, 64), new BasicBlock(64, 64)]);
            stage1.CutShape.Should().Equal(stem.CutShape);
            stage1.ServerLayers.OfType<BasicBlock>().Should().HaveCount(6);
            // The privacy floor counts weight layers in series: the stem alone is 1 (as covid-ct-cnn's first block), with stage 1 it is 5.
            PrivacyFloor.ClientDepth(RunManifest.ForModel("run-depth", stem, TrainingMode.Vanilla, ["h"], 1)).Should().Be(1);
            PrivacyFloor.ClientDepth(RunManifest.ForModel("run-depth", stage1, TrainingMode.Vanilla, ["h"], 1)).Should().Be(5);
        }
    }

    [Fact]
    public void A_model_file_with_basic_blocks_and_a_padded_max_pool_reads_back_with_the_cut_between_blocks()
    {
        var json = """
            {"v":1,"name":"mini-resnet","task":"Classification","inputShape":[1,16,16],"layers":[
              {"type":"conv2d","in":1,"out":8,"kernel":3,"padding":1},{"type":"batchnorm2d","features":8},{"type":"relu"},
              {"type":"maxpool2d","kernel":3,"stride":2,"padding":1},{"type":"basic_block","in":8,"out":8},
              {"type":"cut"},{"type":"basic_block","in":8,"out":16,"stride":2},{"type":"adaptive_avgpool2d","size":1},{"type":"flatten"},
              {"type":"linear","in":16,"out":1},{"type":"sigmoid"}],
             "loss":"BinaryCrossEntropy","optimizer":{"kind":"Adam","learningRate":0.001},"batchSize":8,"epochs":1}
            """u8;
        var model = ModelFile.Parse(json, "m.json");
        model.ClientLayers.Should().HaveCount(5);
        model.ClientLayers[3].Should().Be(new MaxPool2d(3, 2, 1));
        model.ClientLayers[4].Should().Be(new BasicBlock(8, 8, 1));
        model.CutShape.Should().Equal([8L, 8, 8]);
        model.ServerLayers[0].Spec.Should().Be("basic_block in=8 out=16 stride=2");
        new MaxPool2d(2).Spec.Should().Be("maxpool2d kernel=2 stride=2", "files written before padding existed read and write as before");
        var again = ModelFile.Parse(ModelFile.ToJson(model), "again.json");
        again.Layers.Should().Be(model.Layers);

        var bad = () => ModelFile.Parse("""
            {"v":1,"name":"bad","task":"Classification","inputShape":[1,16,16],"layers":[
              {"type":"conv2d","in":1,"out":8,"kernel":3,"padding":1},{"type":"cut"},{"type":"basic_block","in":4,"out":8},
              {"type":"flatten"},{"type":"linear","in":2048,"out":1},{"type":"sigmoid"}],
             "loss":"BinaryCrossEntropy","optimizer":{"kind":"Adam","learningRate":0.001},"batchSize":8,"epochs":1}
            """u8, "bad.json");
        bad.Should().Throw<ModelDefinitionException>()
            .WithMessage("*layer 1 'basic_block in=4 out=8 stride=1' (cloud) does not fit: takes 4 channels, gets 8*");
    }

    [Fact]
    public void Federated_averaging_averages_running_statistics_and_keeps_the_batch_counter_whole()
    {
        var model = ModelFile.Load(Path.Combine(RepoRoot.Path, "docs", "models", "small-cnn.json"));
        var hospitals = new[] { 11, 12 }.Select(seed =>
        {
            var images = SyntheticImages.Generate(8, 28, 28, seed);
            return new TrainingSet(images.Images, images.Labels, [1, 28, 28]);
        }).ToList();
        var (trained, history) = FederatedAveraging.Train(model, hospitals, hospitals[0], rounds: 1, batchSize: 4, seed: 3, (_, _) => 0.5);
        using var _m = trained;
        history.Should().HaveCount(1);
        using var mean = trained.Client.GetState("1.running_mean");
        mean.abs().sum().item<float>().Should().BeGreaterThan(0);
        using var count = trained.Client.GetState("1.num_batches_tracked");
        count.dtype.Should().Be(torch.ScalarType.Int64);
        count.item<long>().Should().Be(2, "each hospital ran two batches of 4");
    }

    private sealed record GoldenBlocks(
        [property: JsonPropertyName("torch_version")] string TorchVersion,
        [property: JsonPropertyName("blocks")] int[][] Blocks,
        [property: JsonPropertyName("batch")] int Batch,
        [property: JsonPropertyName("input_shape")] long[] InputShape,
        [property: JsonPropertyName("lr")] double LearningRate,
        [property: JsonPropertyName("output")] SampledTensor Output,
        [property: JsonPropertyName("loss")] double Loss,
        [property: JsonPropertyName("input_gradient")] SampledTensor InputGradient,
        [property: JsonPropertyName("state_after_step")] Dictionary<string, SampledTensor> StateAfterStep,
        [property: JsonPropertyName("eval_output")] SampledTensor EvalOutput);
}

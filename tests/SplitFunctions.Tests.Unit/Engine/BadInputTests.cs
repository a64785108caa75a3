using SplitFunctions.Core.Model;

namespace SplitFunctions.Tests.Engine;

/// <summary>Every bad input becomes a specific exception naming the problem; the process survives.</summary>
public sealed class BadInputTests
{
    [Fact]
    public void InconsistentShapes_NameTheLayerThatBreaks()
    {
        var act = () => Network.Create([new Conv2d(1, 4, 3), new ReLU(), new Flatten(), new Linear(100, 1)], [1, 8, 8]);
        act.Should().Throw<TensorShapeException>().WithMessage("*layer 3 'linear in=100 out=1' cannot take input of shape [2, 144]*");
        var channels = () => Network.Create([new Conv2d(3, 4, 3)], [1, 8, 8]);
        channels.Should().Throw<TensorShapeException>().WithMessage("*layer 0*");
    }

    [Fact]
    public void ImpossibleLayerOption_IsNamed()
    {
        var act = () => Network.Create([new Linear(4, -2)], [4]);
        act.Should().Throw<EngineException>().WithMessage("*layer 0 'linear in=4 out=-2'*");
    }

    [Fact]
    public void WrongSizedBuffer_IsRejectedBeforeAnyCopy()
    {
        var act = () => TensorData.FromFloats(new float[5], [2, 3]);
        act.Should().Throw<TensorShapeException>().WithMessage("*20 bytes*[2, 3]*needs 24*");
        using var t = TensorData.FromFloats(new float[6], [2, 3]);
        var copy = () => t.CopyTo(new float[5].AsSpan());
        copy.Should().Throw<TensorShapeException>().WithMessage("*needs 24*");
    }

    [Fact]
    public void WrongInputShape_ForANetwork_IsNamed()
    {
        using var net = Network.Create([new Linear(7, 2)], [7]);
        using var x = TensorData.FromFloats(new float[12], [2, 6]);
        var act = () => net.Forward(x, train: false);
        act.Should().Throw<TensorShapeException>().WithMessage("*expects input [batch, 7]*got [2, 6]*");
    }

    [Fact]
    public void NaNInLoss_IsNonFinite()
    {
        using var net = Network.Create([new Linear(2, 1)], [2]);
        using var x = TensorData.FromFloats([float.NaN, 1, 2, 3], [2, 2]);
        using var y = TensorData.FromFloats([1, 2], [2, 1]);
        using var p = net.Forward(x, train: true);
        var act = () => Loss.Compute(LossKind.MeanSquaredError, p, y, backward: true);
        act.Should().Throw<NonFiniteValueException>().WithMessage("*loss is NaN*");

        using var sig = Network.Create([new Linear(2, 1), new Sigmoid()], [2]);
        using var ps = sig.Forward(x, train: true);
        var bce = () => Loss.Compute(LossKind.BinaryCrossEntropy, ps, y, backward: true);
        bce.Should().Throw<NonFiniteValueException>().WithMessage("*NaN*");
    }

    [Fact]
    public void CorruptWeights_AreReportedAsCorrupt()
    {
        using var net = ModelCatalog.LdlMlp.BuildClient();
        var bytes = net.SaveState();
        var act = () => net.LoadState(bytes.AsSpan(0, bytes.Length / 2));
        act.Should().Throw<CorruptStateException>().WithMessage("*not a readable PyTorch state dict*");
        var garbage = () => net.LoadState("definitely not a pickle"u8);
        garbage.Should().Throw<CorruptStateException>();
        var empty = () => net.LoadState([]);
        empty.Should().Throw<CorruptStateException>().WithMessage("*empty*");
    }

    [Fact]
    public void WeightsOfAnotherArchitecture_ListTheDifferences()
    {
        using var pneumonia = ModelCatalog.PneumoniaCnn.BuildClient();
        using var ldl = ModelCatalog.LdlMlp.BuildClient();
        var act = () => ldl.LoadState(pneumonia.SaveState());
        act.Should().Throw<StateMismatchException>().WithMessage("*different architecture*shape mismatch*0.weight*");

        using var wider = Network.Create([new Linear(7, 64), new LeakyReLU(), new Linear(64, 2)], [7]);
        var extra = () => ldl.LoadState(wider.SaveState());
        extra.Should().Throw<StateMismatchException>().WithMessage("*unexpected 2.bias, 2.weight*");
    }

    [Fact]
    public void OptimizerState_RoundTrips_AndCorruptStateIsRejected()
    {
        using var net = ModelCatalog.LdlMlp.BuildClient();
        using var adam = Optimizer.Create(net, OptimizerSettings.Adam(1e-3));
        using var x = GoldenValues.Input([4, 7]);
        using var y = TensorData.FromFloats(new float[4 * 64], [4, 64]);
        using var out1 = net.Forward(x, train: true);
        Loss.Compute(LossKind.MeanSquaredError, out1, y, backward: true);
        adam.Step();
        var state = adam.SaveState();
        state.Length.Should().BeGreaterThan(100);

        using var other = Optimizer.Create(net, OptimizerSettings.Adam(1e-3));
        other.LoadState(state);
        SavedState.Entries(other.SaveState()).Should().BeEquivalentTo(SavedState.Entries(state), o => o.WithStrictOrdering());
        var act = () => other.LoadState(state.AsSpan(0, 40));
        act.Should().Throw<CorruptStateException>();
    }

    [Fact]
    public void CudaRequestedWithoutCuda_IsADeviceError()
    {
        if (TorchRuntime.CudaDeviceCount > 0) return; // the GPU image: nothing to refuse
        var parse = () => TorchRuntime.ParseDevice("cuda");
        parse.Should().Throw<DeviceException>().WithMessage("*'cuda' was requested but no CUDA device is usable*");
        var indexed = () => TorchRuntime.ParseDevice("cuda:1");
        indexed.Should().Throw<DeviceException>().WithMessage("*'cuda:1'*");
        var unknown = () => TorchRuntime.ParseDevice("tpu");
        unknown.Should().Throw<ArgumentException>().WithMessage("*auto, cpu, cuda or cuda:N*");
        TorchRuntime.ParseDevice("auto").type.Should().Be(TorchSharp.DeviceType.CPU);
        TorchRuntime.ParseDevice("cpu").type.Should().Be(TorchSharp.DeviceType.CPU);
    }
}

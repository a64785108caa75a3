using System.Globalization;
using SplitFunctions.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// One layer of an nn.Sequential, as the paper's Table 4 lists it and as a model file writes it (<see cref="LayerJson"/>);
/// <see cref="Build"/> makes the TorchSharp module, <see cref="TryOutputShape"/> checks it fits its input without building it.
/// </summary>
public abstract record Layer
{
    /// <summary>The layer in one line, e.g. "conv2d in=1 out=32 kernel=3 stride=1 padding=1": its type and options, as a model file names them.</summary>
    public abstract string Spec { get; }

    /// <summary>A new TorchSharp module for this layer, its weights drawn from libtorch's generator.</summary>
    public abstract nn.Module<Tensor, Tensor> Build();

    /// <summary>
    /// The per-sample output shape for a per-sample <paramref name="input"/> shape, or false with the reason it does not fit
    /// (also an option out of range). The same arithmetic as libtorch's, so a network is checked before anything is built.
    /// </summary>
    public abstract bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why);

    public sealed override string ToString() => Spec;

    protected static string F(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    protected static bool Fits(long[] shape, out long[] output, out string why)
    {
        output = shape;
        why = "";
        return true;
    }

    protected static bool Misfit(string reason, out long[] output, out string why)
    {
        output = [];
        why = reason;
        return false;
    }

    // [C, H, W] images through a window of `kernel` with `stride` and `padding` (no dilation, floor rounding).
    protected static bool TryWindow(IReadOnlyList<long> input, int channels, long outChannels, int kernel, int stride, int padding, out long[] output,
        out string why)
    {
        if (input.Count != 3) return Misfit($"takes images [channels,height,width], gets [{string.Join(",", input)}]", out output, out why);
        if (channels > 0 && input[0] != channels) return Misfit($"takes {channels} channels, gets {input[0]}", out output, out why);
        var height = (input[1] + 2 * padding - kernel) / stride + 1;
        var width = (input[2] + 2 * padding - kernel) / stride + 1;
        if (input[1] + 2 * padding < kernel || input[2] + 2 * padding < kernel)
            return Misfit($"a {kernel}x{kernel} window does not fit images of {input[1]}x{input[2]}", out output, out why);
        return Fits([outChannels, height, width], out output, out why);
    }
}

public sealed record Conv2d(int In, int Out, int Kernel, int Stride = 1, int Padding = 0) : Layer
{
    public override string Spec => $"conv2d in={In} out={Out} kernel={Kernel} stride={Stride} padding={Padding}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Conv2d(In, Out, Kernel, stride: Stride, padding: Padding);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        In < 1 || Out < 1 || Kernel < 1 || Stride < 1 || Padding < 0
            ? Misfit("in, out, kernel and stride must be at least 1 and padding at least 0", out output, out why)
            : TryWindow(input, In, Out, Kernel, Stride, Padding, out output, out why);
}

/// <summary>Max pooling; <see cref="Padding"/> (ResNet's 3x3 stride-2 stem pool pads 1) is written only when not 0, as files before it had none.</summary>
public sealed record MaxPool2d(int Kernel, int? Stride = null, int Padding = 0) : Layer
{
    public override string Spec => $"maxpool2d kernel={Kernel} stride={Stride ?? Kernel}" + (Padding != 0 ? $" padding={Padding}" : "");
    public override nn.Module<Tensor, Tensor> Build() => nn.MaxPool2d(Kernel, Stride ?? Kernel, Padding);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        Kernel < 1 || Stride < 1 || Padding < 0 || Padding > Kernel / 2
            ? Misfit("kernel and stride must be at least 1, padding from 0 to half the kernel", out output, out why)
            : TryWindow(input, 0, input.Count > 0 ? input[0] : 0, Kernel, Stride ?? Kernel, Padding, out output, out why);
}

public sealed record AvgPool2d(int Kernel, int? Stride = null) : Layer
{
    public override string Spec => $"avgpool2d kernel={Kernel} stride={Stride ?? Kernel}";
    public override nn.Module<Tensor, Tensor> Build() => nn.AvgPool2d(Kernel, Stride ?? Kernel);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        Kernel < 1 || Stride < 1
            ? Misfit("kernel and stride must be at least 1", out output, out why)
            : TryWindow(input, 0, input.Count > 0 ? input[0] : 0, Kernel, Stride ?? Kernel, 0, out output, out why);
}

/// <summary>Averages each channel to <see cref="Size"/>x<see cref="Size"/> whatever the image size (1: global average pooling).</summary>
public sealed record AdaptiveAvgPool2d(int Size) : Layer
{
    public override string Spec => $"adaptive_avgpool2d size={Size}";
    public override nn.Module<Tensor, Tensor> Build() => nn.AdaptiveAvgPool2d(Size);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why)
    {
        if (Size < 1) return Misfit("size must be at least 1", out output, out why);
        if (input.Count != 3) return Misfit($"takes images [channels,height,width], gets [{string.Join(",", input)}]", out output, out why);
        return Fits([input[0], Size, Size], out output, out why);
    }
}

public sealed record BatchNorm2d(int Features) : Layer
{
    public override string Spec => $"batchnorm2d features={Features}";
    public override nn.Module<Tensor, Tensor> Build() => new BatchNormModule(Features, 4);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why)
    {
        if (Features < 1) return Misfit("features must be at least 1", out output, out why);
        if (input.Count != 3 || input[0] != Features) return Misfit($"takes images of {Features} channels [{Features},height,width], gets "
            + $"[{string.Join(",", input)}]", out output, out why);
        return Fits([.. input], out output, out why);
    }
}

public sealed record BatchNorm1d(int Features) : Layer
{
    public override string Spec => $"batchnorm1d features={Features}";
    public override nn.Module<Tensor, Tensor> Build() => new BatchNormModule(Features, 2, 3);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why)
    {
        if (Features < 1) return Misfit("features must be at least 1", out output, out why);
        if (input.Count is not (1 or 2) || input[0] != Features) return Misfit($"takes {Features} features ([{Features}] or [{Features},length]), gets "
            + $"[{string.Join(",", input)}]", out output, out why);
        return Fits([.. input], out output, out why);
    }
}

/// <summary>
/// ResNet's basic block (<see cref="BasicBlockModule"/>): two 3x3 convolutions with batch norm and a shortcut, a projection
/// (1x1 convolution, stride <see cref="Stride"/>, batch norm) when the stride or the channels change. One layer of the
/// sequence, so a cut is always between blocks, never inside one.
/// </summary>
public sealed record BasicBlock(int In, int Out, int Stride = 1) : Layer
{
    public override string Spec => $"basic_block in={In} out={Out} stride={Stride}";
    public override nn.Module<Tensor, Tensor> Build() => new BasicBlockModule(In, Out, Stride);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        In < 1 || Out < 1 || Stride < 1
            ? Misfit("in, out and stride must be at least 1", out output, out why)
            : TryWindow(input, In, Out, 3, Stride, 1, out output, out why);
}

/// <summary>A layer that keeps its input's shape (activations, dropout).</summary>
public abstract record ElementwiseLayer : Layer
{
    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) => Fits([.. input], out output, out why);
}

public sealed record Dropout(double P) : ElementwiseLayer
{
    public override string Spec => $"dropout p={F(P)}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Dropout(P);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        P is >= 0 and < 1 ? base.TryOutputShape(input, out output, out why) : Misfit($"p must be in [0, 1), is {F(P)}", out output, out why);
}

public sealed record ReLU : ElementwiseLayer
{
    public override string Spec => "relu";
    public override nn.Module<Tensor, Tensor> Build() => nn.ReLU();
}

public sealed record LeakyReLU(double Slope = 0.01) : ElementwiseLayer
{
    public override string Spec => $"leaky_relu slope={F(Slope)}";
    public override nn.Module<Tensor, Tensor> Build() => new LeakyReLUModule(Slope);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        double.IsFinite(Slope) ? base.TryOutputShape(input, out output, out why) : Misfit("slope must be a finite number", out output, out why);
}

public sealed record Sigmoid : ElementwiseLayer
{
    public override string Spec => "sigmoid";
    public override nn.Module<Tensor, Tensor> Build() => nn.Sigmoid();
}

public sealed record Tanh : ElementwiseLayer
{
    public override string Spec => "tanh";
    public override nn.Module<Tensor, Tensor> Build() => nn.Tanh();
}

public sealed record Gelu : ElementwiseLayer
{
    public override string Spec => "gelu";
    public override nn.Module<Tensor, Tensor> Build() => nn.GELU();
}

public sealed record Flatten : Layer
{
    public override string Spec => "flatten";
    public override nn.Module<Tensor, Tensor> Build() => nn.Flatten();

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why) =>
        Fits([input.Aggregate(1L, (a, b) => a * b)], out output, out why);
}

public sealed record Linear(int In, int Out) : Layer
{
    public override string Spec => $"linear in={In} out={Out}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Linear(In, Out);

    public override bool TryOutputShape(IReadOnlyList<long> input, out long[] output, out string why)
    {
        if (In < 1 || Out < 1) return Misfit("in and out must be at least 1", out output, out why);
        if (input.Count == 0 || input[^1] != In)
        {
            return Misfit(input.Count == 1
                ? $"takes {In} features, gets {input[0]}"
                : $"takes rows of {In} features, gets [{string.Join(",", input)}]{(input.Count > 1 ? " (flatten first?)" : "")}", out output, out why);
        }
        return Fits([.. input.Take(input.Count - 1), Out], out output, out why);
    }
}

using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Models;

/// <summary>One layer of an nn.Sequential, as the paper's Table 4 lists it; <see cref="Build"/> makes the TorchSharp module.</summary>
public abstract record Layer
{
    /// <summary>The layer in one line, e.g. "conv2d in=1 out=32 kernel=3 stride=1 padding=1" (error messages, docs).</summary>
    public abstract string Spec { get; }

    /// <summary>A new TorchSharp module for this layer, its weights drawn from libtorch's generator.</summary>
    public abstract nn.Module<Tensor, Tensor> Build();

    public sealed override string ToString() => Spec;

    protected static string F(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

public sealed record Conv2d(int In, int Out, int Kernel, int Stride = 1, int Padding = 0) : Layer
{
    public override string Spec => $"conv2d in={In} out={Out} kernel={Kernel} stride={Stride} padding={Padding}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Conv2d(In, Out, Kernel, stride: Stride, padding: Padding);
}

public sealed record MaxPool2d(int Kernel, int? Stride = null) : Layer
{
    public override string Spec => $"maxpool2d kernel={Kernel} stride={Stride ?? Kernel}";
    public override nn.Module<Tensor, Tensor> Build() => nn.MaxPool2d(Kernel, Stride ?? Kernel);
}

public sealed record AvgPool2d(int Kernel, int? Stride = null) : Layer
{
    public override string Spec => $"avgpool2d kernel={Kernel} stride={Stride ?? Kernel}";
    public override nn.Module<Tensor, Tensor> Build() => nn.AvgPool2d(Kernel, Stride ?? Kernel);
}

public sealed record BatchNorm2d(int Features) : Layer
{
    public override string Spec => $"batchnorm2d features={Features}";
    public override nn.Module<Tensor, Tensor> Build() => nn.BatchNorm2d(Features);
}

public sealed record BatchNorm1d(int Features) : Layer
{
    public override string Spec => $"batchnorm1d features={Features}";
    public override nn.Module<Tensor, Tensor> Build() => nn.BatchNorm1d(Features);
}

public sealed record Dropout(double P) : Layer
{
    public override string Spec => $"dropout p={F(P)}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Dropout(P);
}

public sealed record ReLU : Layer
{
    public override string Spec => "relu";
    public override nn.Module<Tensor, Tensor> Build() => nn.ReLU();
}

public sealed record LeakyReLU(double Slope = 0.01) : Layer
{
    public override string Spec => $"leaky_relu slope={F(Slope)}";
    public override nn.Module<Tensor, Tensor> Build() => nn.LeakyReLU(Slope);
}

public sealed record Sigmoid : Layer
{
    public override string Spec => "sigmoid";
    public override nn.Module<Tensor, Tensor> Build() => nn.Sigmoid();
}

public sealed record Flatten : Layer
{
    public override string Spec => "flatten";
    public override nn.Module<Tensor, Tensor> Build() => nn.Flatten();
}

public sealed record Linear(int In, int Out) : Layer
{
    public override string Spec => $"linear in={In} out={Out}";
    public override nn.Module<Tensor, Tensor> Build() => nn.Linear(In, Out);
}

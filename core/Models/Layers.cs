using System.Globalization;

namespace SplitFunctions.Core.Models;

/// <summary>One layer of an nn.Sequential; <see cref="Spec"/> is the line the native engine parses.</summary>
public abstract record Layer
{
    public abstract string Spec { get; }

    public sealed override string ToString() => Spec;

    protected static string F(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

public sealed record Conv2d(int In, int Out, int Kernel, int Stride = 1, int Padding = 0) : Layer
{
    public override string Spec => $"conv2d in={In} out={Out} kernel={Kernel} stride={Stride} padding={Padding}";
}

public sealed record MaxPool2d(int Kernel, int? Stride = null) : Layer
{
    public override string Spec => $"maxpool2d kernel={Kernel} stride={Stride ?? Kernel}";
}

public sealed record AvgPool2d(int Kernel, int? Stride = null) : Layer
{
    public override string Spec => $"avgpool2d kernel={Kernel} stride={Stride ?? Kernel}";
}

public sealed record BatchNorm2d(int Features) : Layer
{
    public override string Spec => $"batchnorm2d features={Features}";
}

public sealed record BatchNorm1d(int Features) : Layer
{
    public override string Spec => $"batchnorm1d features={Features}";
}

public sealed record Dropout(double P) : Layer
{
    public override string Spec => $"dropout p={F(P)}";
}

public sealed record ReLU : Layer
{
    public override string Spec => "relu";
}

public sealed record LeakyReLU(double Slope = 0.01) : Layer
{
    public override string Spec => $"leaky_relu slope={F(Slope)}";
}

public sealed record Sigmoid : Layer
{
    public override string Spec => "sigmoid";
}

public sealed record Flatten : Layer
{
    public override string Spec => "flatten";
}

public sealed record Linear(int In, int Out) : Layer
{
    public override string Spec => $"linear in={In} out={Out}";
}

/// <summary>Turns a layer list into the engine's spec text.</summary>
public static class LayerSpec
{
    public static string ToSpecText(IEnumerable<Layer> layers) => string.Join("; ", layers.Select(l => l.Spec));
}

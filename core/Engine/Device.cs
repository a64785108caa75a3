namespace SplitFunctions.Core.Engine;

/// <summary>Where tensors and networks live (codes match native/include).</summary>
public enum Device
{
    Cpu = 0,
    Cuda = 1,
}

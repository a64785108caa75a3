namespace SplitFunctions.Core.Data;

/// <summary>How the axes of an image array are ordered.</summary>
public enum ImageLayout
{
    /// <summary>Decide from the rank and the channel-sized axis: NHW for rank 3, NCHW or NHWC for rank 4.</summary>
    Auto,
    /// <summary>Grey images (N, H, W).</summary>
    NHW,
    /// <summary>(N, C, H, W), PyTorch's order.</summary>
    NCHW,
    /// <summary>(N, H, W, C), TensorFlow's and most image libraries' order.</summary>
    NHWC,
}

using TorchSharp;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// ResNet's basic block (He et al. 2016), as torchvision's <c>BasicBlock</c> computes it and names its state: conv1 (3x3,
/// stride s, no bias), bn1, ReLU, conv2 (3x3, no bias), bn2, plus the shortcut, then ReLU. The shortcut is the input
/// itself, or a projection <c>downsample</c> (1x1 convolution with stride s, no bias, and batch norm) when the stride
/// or the channels change. State keys are torchvision's ("conv1.weight", "bn1.running_mean", "downsample.0.weight"),
/// so a block's weights load into PyTorch and back.
/// </summary>
public sealed class BasicBlockModule : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv1;
    private readonly BatchNormModule bn1;
    private readonly TorchSharp.Modules.Conv2d conv2;
    private readonly BatchNormModule bn2;
    private readonly TorchSharp.Modules.Sequential? downsample;

    public BasicBlockModule(int inChannels, int outChannels, int stride) : base(nameof(BasicBlockModule))
    {
        conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false);
        bn1 = new BatchNormModule(outChannels, 4);
        conv2 = nn.Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, bias: false);
        bn2 = new BatchNormModule(outChannels, 4);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("conv2", conv2);
        register_module("bn2", bn2);
        if (stride != 1 || inChannels != outChannels)
        {
            downsample = nn.Sequential(nn.Conv2d(inChannels, outChannels, 1, stride: stride, bias: false), new BatchNormModule(outChannels, 4));
            register_module("downsample", downsample);
        }
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var residual = bn2.forward(conv2.forward(bn1.forward(conv1.forward(input)).relu_()));
        var shortcut = downsample is null ? input : downsample.forward(input);
        return residual.add_(shortcut).relu_().MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv1.Dispose();
            bn1.Dispose();
            conv2.Dispose();
            bn2.Dispose();
            downsample?.Dispose();
        }
        base.Dispose(disposing);
    }
}

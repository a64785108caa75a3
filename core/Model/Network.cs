using System.Collections;
using System.Runtime.InteropServices;
using SplitFunctions.Core.Model;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace SplitFunctions.Core.Model;

/// <summary>
/// A TorchSharp nn.Sequential of catalog layers with its per-sample input and output shapes. Layers are named
/// "0", "1", ... as PyTorch's nn.Sequential names them, so the state dict's keys are PyTorch's ("0.weight").
/// </summary>
public sealed class Network : IDisposable
{
    private bool training = true;

    private Network(nn.Module<Tensor, Tensor> module, IReadOnlyList<Layer> layers, long[] inputShape, long[] outputShape, Device device)
    {
        Module = module;
        Layers = layers;
        InputShape = inputShape;
        OutputShape = outputShape;
        Device = device;
    }

    /// <summary>The TorchSharp module itself.</summary>
    public nn.Module<Tensor, Tensor> Module { get; }

    public IReadOnlyList<Layer> Layers { get; }

    /// <summary>Per-sample input shape (no batch dimension).</summary>
    public long[] InputShape { get; }

    /// <summary>Per-sample output shape, found by a dry run at construction.</summary>
    public long[] OutputShape { get; }

    public Device Device { get; }

    /// <summary>
    /// Builds the layers on <paramref name="device"/> (CPU by default). Weights come from libtorch's generator:
    /// seed it first (<see cref="TorchRuntime.Seed"/>) for reproducible runs. A layer that cannot take its
    /// input's shape is a <see cref="TensorShapeException"/> naming it.
    /// </summary>
    public static Network Create(IReadOnlyList<Layer> layers, ReadOnlySpan<long> inputShape, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        TorchRuntime.EnsureConfigured();
        device ??= CPU;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (var i = 0; i < layers.Count; i++)
        {
            try
            {
                modules.Add((i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i].Build()));
            }
            catch (Exception e) when (e is ArgumentException or ExternalException)
            {
                throw new InvalidNetworkSpecException($"layer {i} '{layers[i].Spec}' cannot be built: {e.Message.Split('\n')[0]}");
            }
        }
        var module = nn.Sequential(modules);
        try
        {
            var output = DryRun(modules, layers, inputShape);
            if (device.type != DeviceType.CPU)
            {
                try { module.to(device); }
                catch (ExternalException e) { throw new DeviceException($"cannot place the network on {device}: {e.Message.Split('\n')[0]}", e); }
            }
            return new Network(module, layers, inputShape.ToArray(), output, device);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    // Two zero samples through each layer in eval mode: finds the output shape, and the first layer that breaks.
    private static long[] DryRun(List<(string, nn.Module<Tensor, Tensor>)> modules, IReadOnlyList<Layer> layers, ReadOnlySpan<long> inputShape)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = zeros([2, .. inputShape]);
        for (var i = 0; i < modules.Count; i++)
        {
            var module = modules[i].Item2;
            module.eval();
            try
            {
                x = module.forward(x);
            }
            catch (Exception e) when (e is ExternalException or ArgumentException)
            {
                throw new TensorShapeException($"layer {i} '{layers[i].Spec}' cannot take input of shape [{TensorData.Format(x.shape)}]: "
                    + $"{e.Message.Split('\n')[0]}");
            }
            finally
            {
                module.train();
            }
        }
        return x.shape[1..];
    }

    /// <summary>
    /// Runs the layers on a batch [batch, ..InputShape] on this network's device. In training mode the result keeps
    /// the autograd graph for backward; in eval mode no graph is kept.
    /// </summary>
    public Tensor Forward(Tensor input, bool train)
    {
        ArgumentNullException.ThrowIfNull(input);
        var shape = input.shape;
        if (shape.Length != InputShape.Length + 1 || !shape.AsSpan(1).SequenceEqual(InputShape))
            throw new TensorShapeException($"network expects input [batch, {TensorData.Format(InputShape)}], got [{TensorData.Format(shape)}]");
        if (train != training)
        {
            Module.train(train);
            training = train;
        }
        if (train) return LibTorchErrors.Guard("forward", () => Module.forward(input));
        using var noGrad = no_grad();
        return LibTorchErrors.Guard("forward", () => Module.forward(input));
    }

    /// <summary>
    /// Training-mode outputs that change nothing: no graph, and batch norm's running statistics (the network's buffers)
    /// as they were before. For a forward pass that is repeated for the real step (the U-shaped server's first leg), so
    /// each batch moves the running statistics once, as in PyTorch.
    /// </summary>
    public Tensor ForwardTrainingWithoutUpdate(Tensor input)
    {
        using var noGrad = no_grad();
        var buffers = Module.named_buffers().ToList();
        if (buffers.Count == 0) return Forward(input, train: true);
        using var scope = NewDisposeScope();
        var saved = buffers.Select(b => b.buffer.clone()).ToList();
        var output = Forward(input, train: true);
        for (var i = 0; i < buffers.Count; i++) buffers[i].buffer.copy_(saved[i]);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount => Module.parameters().Sum(p => p.numel());

    /// <summary>State-dict keys ("0.weight", "0.bias", ...) in PyTorch's order.</summary>
    public IReadOnlyList<string> StateNames => [.. Module.state_dict().Keys];

    /// <summary>A CPU copy of one state entry; the caller disposes it.</summary>
    public Tensor GetState(string name)
    {
        var state = Module.state_dict();
        if (!state.TryGetValue(name, out var value)) throw new StateMismatchException($"the network has no state entry '{name}' (it has "
            + $"{string.Join(", ", state.Keys)})");
        using var scope = NewDisposeScope();
        return value.detach().cpu().clone().MoveToOuterDisposeScope();
    }

    /// <summary>Overwrites one state entry; the shape must match.</summary>
    public void SetState(string name, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var state = Module.state_dict();
        if (!state.TryGetValue(name, out var target)) throw new StateMismatchException($"the network has no state entry '{name}' (it has "
            + $"{string.Join(", ", state.Keys)})");
        if (!target.shape.SequenceEqual(value.shape))
            throw new TensorShapeException($"state entry '{name}' has shape [{TensorData.Format(target.shape)}]; the value has "
                + $"[{TensorData.Format(value.shape)}]");
        using var noGrad = no_grad();
        target.copy_(value);
    }

    /// <summary>The state dict as bytes PyTorch reads with torch.load (zip format of torch.save).</summary>
    public byte[] SaveState()
    {
        using var scope = NewDisposeScope();
        var state = new Dictionary<string, Tensor>();
        foreach (var (name, value) in Module.state_dict()) state[name] = value.detach().cpu();
        using var stream = new MemoryStream();
        PyTorchPickler.PickleStateDict(stream, state, leaveOpen: true);
        return stream.ToArray();
    }

    /// <summary>
    /// Loads a state dict (ours, or torch.save(model.state_dict()) from PyTorch) strictly: the same keys and shapes,
    /// float32. Unreadable bytes are a <see cref="CorruptStateException"/>; another architecture's weights a
    /// <see cref="StateMismatchException"/> listing every difference. Nothing changes unless everything fits.
    /// </summary>
    public void LoadState(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) throw new CorruptStateException("weights are empty: not a readable PyTorch state dict");
        TorchRuntime.EnsureConfigured();
        using var scope = NewDisposeScope();
        var loaded = Read(bytes);
        var expected = Module.state_dict();
        var problems = new List<string>();
        var missing = expected.Keys.Where(k => !loaded.ContainsKey(k)).ToList();
        var unexpected = loaded.Keys.Where(k => !expected.ContainsKey(k)).Order(StringComparer.Ordinal).ToList(); // the pickle's order is lost
        var mismatched = expected.Where(e => loaded.TryGetValue(e.Key, out var t) && !t.shape.SequenceEqual(e.Value.shape))
            .Select(e => $"{e.Key} [{TensorData.Format(loaded[e.Key].shape)}] vs ours [{TensorData.Format(e.Value.shape)}]").ToList();
        if (missing.Count > 0) problems.Add("missing " + string.Join(", ", missing));
        if (unexpected.Count > 0) problems.Add("unexpected " + string.Join(", ", unexpected));
        if (mismatched.Count > 0) problems.Add("shape mismatch " + string.Join("; ", mismatched));
        if (problems.Count > 0)
            throw new StateMismatchException($"weights of a different architecture: {string.Join("; ", problems)}");
        var wrongType = loaded.Where(l => l.Value.dtype != expected[l.Key].dtype).Select(l => $"{l.Key} is {l.Value.dtype}").ToList();
        if (wrongType.Count > 0)
            throw new StateMismatchException($"weights of a different architecture: element type differs ({string.Join(", ", wrongType)}; expected "
                + $"{expected.First().Value.dtype})");
        using var noGrad = no_grad();
        foreach (var (name, target) in expected) target.copy_(loaded[name]);
    }

    private static Dictionary<string, Tensor> Read(ReadOnlySpan<byte> bytes)
    {
        Hashtable table;
        try
        {
            using var stream = new MemoryStream(bytes.ToArray(), writable: false);
            table = PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CorruptStateException($"weights ({bytes.Length} bytes) are not a readable PyTorch state dict: {e.Message.Split('\n')[0]}", e);
        }
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string key || entry.Value is not Tensor tensor)
                throw new CorruptStateException($"weights are not a PyTorch state dict: entry '{entry.Key}' is {entry.Value?.GetType().Name ?? "null"}, not a "
                    + $"tensor");
            state[key] = tensor;
        }
        return state;
    }

    public void Dispose() => Module.Dispose();
}

using System.Runtime.InteropServices;

namespace SplitFunctions.Core.Engine;

/// <summary>P/Invoke declarations of native/include/splitfn_engine.h; the only place that names the library.</summary>
internal static unsafe partial class NativeMethods
{
    private const string Library = "splitfn_engine";

    [LibraryImport(Library)] internal static partial nint sf_last_error();
    [LibraryImport(Library)] internal static partial int sf_version();
    [LibraryImport(Library)] internal static partial int sf_set_num_threads(int threads);
    [LibraryImport(Library)] internal static partial int sf_get_num_threads();
    [LibraryImport(Library)] internal static partial int sf_manual_seed(ulong seed);
    [LibraryImport(Library)] internal static partial int sf_cuda_device_count();

    [LibraryImport(Library)] internal static partial long sf_buffer_length(nint buffer);
    [LibraryImport(Library)] internal static partial byte* sf_buffer_data(nint buffer);
    [LibraryImport(Library)] internal static partial void sf_buffer_free(nint buffer);

    [LibraryImport(Library)]
    internal static partial int sf_tensor_from_data(void* data, long byteLength, int dtype, long* shape, int rank, int device, out TensorHandle tensor);
    [LibraryImport(Library)] internal static partial int sf_tensor_rank(TensorHandle tensor, out int rank);
    [LibraryImport(Library)] internal static partial int sf_tensor_shape(TensorHandle tensor, long* shape, int capacity);
    [LibraryImport(Library)] internal static partial int sf_tensor_copy_to(TensorHandle tensor, int dtype, void* destination, long byteLength);
    [LibraryImport(Library)] internal static partial int sf_tensor_grad(TensorHandle tensor, out TensorHandle gradient);
    [LibraryImport(Library)] internal static partial int sf_tensor_backward(TensorHandle tensor, TensorHandle gradient);
    [LibraryImport(Library, EntryPoint = "sf_tensor_backward")] internal static partial int sf_tensor_backward_scalar(TensorHandle tensor, nint noGradient);
    [LibraryImport(Library)] internal static partial int sf_tensor_count_non_finite(TensorHandle tensor, out long count);
    [LibraryImport(Library)] internal static partial void sf_tensor_free(nint tensor);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int sf_network_create(string spec, long* inputShape, int inputRank, int device, out NetworkHandle network);
    [LibraryImport(Library)] internal static partial int sf_network_output_shape(NetworkHandle network, long* shape, int capacity, out int rank);
    [LibraryImport(Library)] internal static partial int sf_network_forward(NetworkHandle network, TensorHandle input, int train, int needInputGrad, out TensorHandle output);
    [LibraryImport(Library)] internal static partial int sf_network_zero_grad(NetworkHandle network);
    [LibraryImport(Library)] internal static partial int sf_network_parameter_count(NetworkHandle network, out long count);
    [LibraryImport(Library)] internal static partial int sf_network_state_names(NetworkHandle network, out nint names);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int sf_network_get_state(NetworkHandle network, string name, out TensorHandle value);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int sf_network_set_state(NetworkHandle network, string name, TensorHandle value);
    [LibraryImport(Library)] internal static partial int sf_network_save_state(NetworkHandle network, out nint buffer);
    [LibraryImport(Library)] internal static partial int sf_network_load_state(NetworkHandle network, byte* data, long length);
    [LibraryImport(Library)] internal static partial void sf_network_free(nint network);

    [LibraryImport(Library)] internal static partial int sf_loss(int kind, TensorHandle prediction, TensorHandle target, int backward, out double value);

    [LibraryImport(Library)] internal static partial int sf_optimizer_sgd(NetworkHandle network, double lr, double momentum, double weightDecay, int nesterov, out OptimizerHandle optimizer);
    [LibraryImport(Library)] internal static partial int sf_optimizer_adam(NetworkHandle network, double lr, double beta1, double beta2, double eps, double weightDecay, out OptimizerHandle optimizer);
    [LibraryImport(Library)] internal static partial int sf_optimizer_step(OptimizerHandle optimizer);
    [LibraryImport(Library)] internal static partial int sf_optimizer_zero_grad(OptimizerHandle optimizer);
    [LibraryImport(Library)] internal static partial int sf_optimizer_save_state(OptimizerHandle optimizer, out nint buffer);
    [LibraryImport(Library)] internal static partial int sf_optimizer_load_state(OptimizerHandle optimizer, byte* data, long length);
    [LibraryImport(Library)] internal static partial void sf_optimizer_free(nint optimizer);
}

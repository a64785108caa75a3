/*
 * splitfn_engine: a small C ABI over libtorch for SplitFunctions.
 *
 * Rules every export follows:
 *  - returns SF_OK (0) or an error code; the message is kept per thread (sf_last_error);
 *  - never lets a C++ exception escape (it would abort the .NET process);
 *  - checks every buffer length against the shape it claims to hold;
 *  - handles are owned by the caller and released with the matching *_free.
 */
#ifndef SPLITFN_ENGINE_H
#define SPLITFN_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SF_API __attribute__((visibility("default")))

enum sf_status {
  SF_OK = 0,
  SF_ERR_INVALID_ARGUMENT = 1, /* null pointer, bad enum value, bad option */
  SF_ERR_INVALID_SPEC = 2,     /* unknown layer, bad layer option */
  SF_ERR_SHAPE = 3,            /* inconsistent shapes, buffer length vs shape */
  SF_ERR_NON_FINITE = 4,       /* NaN or Inf where a finite value is required */
  SF_ERR_CORRUPT_DATA = 5,     /* weights/optimizer bytes that cannot be parsed */
  SF_ERR_STATE_MISMATCH = 6,   /* weights for another architecture */
  SF_ERR_DEVICE = 7,           /* CUDA requested but unavailable, out of memory */
  SF_ERR_TORCH = 8,            /* any other libtorch error */
  SF_ERR_UNKNOWN = 99
};

enum sf_dtype { SF_FLOAT32 = 0, SF_FLOAT16 = 1, SF_BFLOAT16 = 2, SF_INT64 = 3, SF_UINT8 = 4 };
enum sf_device { SF_CPU = 0, SF_CUDA = 1 };
enum sf_loss { SF_LOSS_BCE = 0, SF_LOSS_BCE_WITH_LOGITS = 1, SF_LOSS_MSE = 2 };

typedef struct sf_tensor sf_tensor;
typedef struct sf_network sf_network;
typedef struct sf_optimizer sf_optimizer;
typedef struct sf_buffer sf_buffer;

/* ---- errors, process settings ---- */
SF_API const char* sf_last_error(void);
SF_API int sf_version(void);
SF_API int sf_set_num_threads(int32_t threads);
SF_API int32_t sf_get_num_threads(void);
SF_API int sf_manual_seed(uint64_t seed);
SF_API int32_t sf_cuda_device_count(void);

/* ---- byte buffers returned by the engine (weights, optimizer state) ---- */
SF_API int64_t sf_buffer_length(const sf_buffer* buffer);
SF_API const uint8_t* sf_buffer_data(const sf_buffer* buffer);
SF_API void sf_buffer_free(sf_buffer* buffer);

/* ---- tensors ---- */
/* Copies byte_length bytes of `dtype` data shaped `shape` onto `device`. */
SF_API int sf_tensor_from_data(const void* data, int64_t byte_length, int32_t dtype,
                               const int64_t* shape, int32_t rank, int32_t device, sf_tensor** out);
SF_API int sf_tensor_rank(const sf_tensor* t, int32_t* rank);
SF_API int sf_tensor_shape(const sf_tensor* t, int64_t* shape, int32_t capacity);
/* Copies the values, converted to `dtype`, into dst (byte_length must match exactly). */
SF_API int sf_tensor_copy_to(const sf_tensor* t, int32_t dtype, void* dst, int64_t byte_length);
/* Gradient accumulated on a tensor that was used with need_input_grad. */
SF_API int sf_tensor_grad(const sf_tensor* t, sf_tensor** out);
/* Backpropagates from `t` with output gradient `grad` (null for a scalar). */
SF_API int sf_tensor_backward(sf_tensor* t, const sf_tensor* grad);
/* Counts NaN/Inf values. */
SF_API int sf_tensor_count_non_finite(const sf_tensor* t, int64_t* count);
SF_API void sf_tensor_free(sf_tensor* t);

/* ---- networks ---- */
/*
 * Builds an nn.Sequential from a spec: layers separated by ';' or newlines, each
 * "name key=value ...", e.g. "conv2d in=1 out=32 kernel=3 padding=1; relu; maxpool2d kernel=2".
 * input_shape is the per-sample shape (no batch dimension); the spec is checked by a dry run.
 */
SF_API int sf_network_create(const char* spec, const int64_t* input_shape, int32_t input_rank,
                             int32_t device, sf_network** out);
SF_API int sf_network_output_shape(const sf_network* n, int64_t* shape, int32_t capacity, int32_t* rank);
/* train=1: training mode and autograd graph; need_input_grad=1 also records d(out)/d(input). */
SF_API int sf_network_forward(sf_network* n, sf_tensor* input, int32_t train, int32_t need_input_grad,
                              sf_tensor** out);
SF_API int sf_network_zero_grad(sf_network* n);
SF_API int sf_network_parameter_count(const sf_network* n, int64_t* count);
/* Parameters and buffers in state-dict order: names separated by '\n' into a buffer. */
SF_API int sf_network_state_names(const sf_network* n, sf_buffer** names);
SF_API int sf_network_get_state(const sf_network* n, const char* name, sf_tensor** out);
SF_API int sf_network_set_state(sf_network* n, const char* name, const sf_tensor* value);
/* PyTorch-compatible state dict (torch.load + load_state_dict(strict=True)). */
SF_API int sf_network_save_state(const sf_network* n, sf_buffer** out);
SF_API int sf_network_load_state(sf_network* n, const uint8_t* data, int64_t length);

/* ---- loss ---- */
/* Computes the mean loss, fails on a non-finite value, and (if backward) backpropagates it. */
SF_API int sf_loss(int32_t kind, sf_tensor* prediction, const sf_tensor* target, int32_t backward,
                   double* value);

/* ---- optimizers ---- */
SF_API int sf_optimizer_sgd(sf_network* n, double lr, double momentum, double weight_decay,
                            int32_t nesterov, sf_optimizer** out);
SF_API int sf_optimizer_adam(sf_network* n, double lr, double beta1, double beta2, double eps,
                             double weight_decay, sf_optimizer** out);
SF_API int sf_optimizer_step(sf_optimizer* o);
SF_API int sf_optimizer_zero_grad(sf_optimizer* o);
SF_API int sf_optimizer_save_state(const sf_optimizer* o, sf_buffer** out);
SF_API int sf_optimizer_load_state(sf_optimizer* o, const uint8_t* data, int64_t length);
SF_API void sf_optimizer_free(sf_optimizer* o);
SF_API void sf_network_free(sf_network* n);

#ifdef __cplusplus
}
#endif
#endif

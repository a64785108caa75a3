// Errors, process settings, buffers, tensors, losses and optimizers.
#include <cmath>
#include <cstring>
#include <limits>

#include "internal.h"

namespace {
thread_local std::string last_error;

torch::Dtype dtype_from(int32_t dtype) {
  switch (dtype) {
    case SF_FLOAT32: return torch::kFloat32;
    case SF_FLOAT16: return torch::kFloat16;
    case SF_BFLOAT16: return torch::kBFloat16;
    case SF_INT64: return torch::kInt64;
    case SF_UINT8: return torch::kUInt8;
    default: throw sf::Error(SF_ERR_INVALID_ARGUMENT, "unknown dtype code " + std::to_string(dtype));
  }
}

// numel * element size, refusing shapes whose byte size overflows.
int64_t byte_size(c10::IntArrayRef shape, torch::Dtype dtype) {
  int64_t count = 1;
  for (auto d : shape) {
    sf::require(d >= 0, SF_ERR_SHAPE, "negative dimension in shape " + sf::shape_text(shape));
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / d)
      throw sf::Error(SF_ERR_SHAPE, "shape " + sf::shape_text(shape) + " is too large");
    count *= d;
  }
  const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
  if (count > std::numeric_limits<int64_t>::max() / element)
    throw sf::Error(SF_ERR_SHAPE, "shape " + sf::shape_text(shape) + " is too large");
  return count * element;
}

sf_buffer* buffer_from(std::vector<char>&& bytes) {
  auto* b = new sf_buffer();
  b->bytes = std::move(bytes);
  return b;
}
}  // namespace

namespace sf {

int fail(int status, const std::string& message) {
  last_error = message;
  return status;
}

std::string shape_text(c10::IntArrayRef shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

torch::Device device_from(int32_t device) {
  if (device == SF_CPU) return torch::Device(torch::kCPU);
  if (device == SF_CUDA) {
    if (!torch::cuda::is_available())
      throw Error(SF_ERR_DEVICE, "CUDA was requested but this libtorch has no usable CUDA device");
    return torch::Device(torch::kCUDA, 0);
  }
  throw Error(SF_ERR_INVALID_ARGUMENT, "unknown device code " + std::to_string(device));
}

void require(bool condition, int status, const std::string& message) {
  if (!condition) throw Error(status, message);
}

}  // namespace sf

extern "C" {

const char* sf_last_error(void) { return last_error.c_str(); }

int sf_version(void) { return 1; }

int sf_set_num_threads(int32_t threads) {
  SF_GUARD({
    sf::require(threads >= 1, SF_ERR_INVALID_ARGUMENT, "thread count must be at least 1");
    at::set_num_threads(threads);
  })
}

int32_t sf_get_num_threads(void) { return at::get_num_threads(); }

int sf_manual_seed(uint64_t seed) { SF_GUARD(torch::manual_seed(seed)) }

int32_t sf_cuda_device_count(void) {
  try {
    return static_cast<int32_t>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

int64_t sf_buffer_length(const sf_buffer* buffer) { return buffer ? static_cast<int64_t>(buffer->bytes.size()) : 0; }
const uint8_t* sf_buffer_data(const sf_buffer* buffer) {
  return buffer ? reinterpret_cast<const uint8_t*>(buffer->bytes.data()) : nullptr;
}
void sf_buffer_free(sf_buffer* buffer) { delete buffer; }

int sf_tensor_from_data(const void* data, int64_t byte_length, int32_t dtype, const int64_t* shape,
                        int32_t rank, int32_t device, sf_tensor** out) {
  SF_GUARD({
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    *out = nullptr;
    sf::require(rank >= 0 && rank <= 8, SF_ERR_SHAPE, "tensor rank must be 0..8, got " + std::to_string(rank));
    sf::require(rank == 0 || shape != nullptr, SF_ERR_INVALID_ARGUMENT, "shape is null");
    const auto type = dtype_from(dtype);
    std::vector<int64_t> dims(shape, shape + rank);
    const int64_t expected = byte_size(dims, type);
    sf::require(byte_length == expected, SF_ERR_SHAPE,
                "buffer holds " + std::to_string(byte_length) + " bytes but shape " + sf::shape_text(dims) +
                    " of " + std::string(c10::toString(type)) + " needs " + std::to_string(expected));
    sf::require(expected == 0 || data != nullptr, SF_ERR_INVALID_ARGUMENT, "data is null");
    auto target = sf::device_from(device);
    torch::Tensor t = expected == 0
        ? torch::empty(dims, torch::TensorOptions().dtype(type))
        : torch::from_blob(const_cast<void*>(data), dims, torch::TensorOptions().dtype(type)).clone();
    if (target.is_cuda()) t = t.to(target);
    *out = new sf_tensor{t};
  })
}

int sf_tensor_rank(const sf_tensor* t, int32_t* rank) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    sf::require(rank != nullptr, SF_ERR_INVALID_ARGUMENT, "rank pointer is null");
    *rank = static_cast<int32_t>(t->value.dim());
  })
}

int sf_tensor_shape(const sf_tensor* t, int64_t* shape, int32_t capacity) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    sf::require(capacity >= t->value.dim(), SF_ERR_SHAPE,
                "shape capacity " + std::to_string(capacity) + " is smaller than rank " + std::to_string(t->value.dim()));
    for (int64_t i = 0; i < t->value.dim(); ++i) shape[i] = t->value.size(i);
  })
}

int sf_tensor_copy_to(const sf_tensor* t, int32_t dtype, void* dst, int64_t byte_length) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    const auto type = dtype_from(dtype);
    const int64_t expected = byte_size(t->value.sizes(), type);
    sf::require(byte_length == expected, SF_ERR_SHAPE,
                "destination holds " + std::to_string(byte_length) + " bytes but tensor " +
                    sf::shape_text(t->value.sizes()) + " as " + std::string(c10::toString(type)) + " needs " +
                    std::to_string(expected));
    if (expected == 0) return SF_OK;
    sf::require(dst != nullptr, SF_ERR_INVALID_ARGUMENT, "destination is null");
    auto host = t->value.detach().to(torch::kCPU, type).contiguous();
    std::memcpy(dst, host.data_ptr(), static_cast<size_t>(expected));
  })
}

int sf_tensor_grad(const sf_tensor* t, sf_tensor** out) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    *out = nullptr;
    auto g = t->value.grad();
    sf::require(g.defined(), SF_ERR_INVALID_ARGUMENT,
                "tensor has no gradient: run forward with need_input_grad and backward first");
    *out = new sf_tensor{g.detach().clone()};
  })
}

int sf_tensor_backward(sf_tensor* t, const sf_tensor* grad) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    sf::require(t->value.requires_grad(), SF_ERR_INVALID_ARGUMENT,
                "tensor is not part of a training graph (forward in train mode first)");
    if (grad == nullptr) {
      sf::require(t->value.numel() == 1, SF_ERR_SHAPE, "backward without a gradient needs a scalar");
      t->value.backward();
      return SF_OK;
    }
    sf::require(grad->value.sizes() == t->value.sizes(), SF_ERR_SHAPE,
                "gradient shape " + sf::shape_text(grad->value.sizes()) + " does not match output shape " +
                    sf::shape_text(t->value.sizes()));
    auto g = grad->value.to(t->value.device(), t->value.scalar_type());
    sf::require(torch::isfinite(g).all().item<bool>(), SF_ERR_NON_FINITE, "gradient contains NaN or Inf");
    t->value.backward(g);
  })
}

int sf_tensor_count_non_finite(const sf_tensor* t, int64_t* count) {
  SF_GUARD({
    sf::require_handle(t, "tensor");
    sf::require(count != nullptr, SF_ERR_INVALID_ARGUMENT, "count pointer is null");
    auto v = t->value.detach();
    *count = v.is_floating_point() ? (~torch::isfinite(v)).sum().item<int64_t>() : 0;
  })
}

void sf_tensor_free(sf_tensor* t) { delete t; }

int sf_loss(int32_t kind, sf_tensor* prediction, const sf_tensor* target, int32_t backward, double* value) {
  SF_GUARD({
    sf::require_handle(prediction, "prediction");
    sf::require_handle(target, "target");
    const auto& p = prediction->value;
    sf::require(p.numel() == target->value.numel(), SF_ERR_SHAPE,
                "prediction " + sf::shape_text(p.sizes()) + " and target " + sf::shape_text(target->value.sizes()) +
                    " hold different numbers of values");
    auto y = target->value.to(p.device(), p.scalar_type()).reshape(p.sizes());
    sf::require(torch::isfinite(y).all().item<bool>(), SF_ERR_NON_FINITE, "target contains NaN or Inf");
    torch::Tensor loss;
    switch (kind) {
      case SF_LOSS_BCE:
        sf::require(((y >= 0) & (y <= 1)).all().item<bool>(), SF_ERR_INVALID_ARGUMENT,
                    "binary cross-entropy targets must lie in [0, 1]");
        sf::require(torch::isfinite(p).all().item<bool>(), SF_ERR_NON_FINITE,
                    "loss is NaN: the prediction contains NaN or Inf (diverged weights or bad input)");
        loss = torch::binary_cross_entropy(p, y);
        break;
      case SF_LOSS_BCE_WITH_LOGITS:
        loss = torch::binary_cross_entropy_with_logits(p, y);
        break;
      case SF_LOSS_MSE:
        loss = torch::mse_loss(p, y);
        break;
      default:
        throw sf::Error(SF_ERR_INVALID_ARGUMENT, "unknown loss code " + std::to_string(kind));
    }
    const double v = loss.item<double>();
    sf::require(std::isfinite(v), SF_ERR_NON_FINITE,
                "loss is " + std::string(std::isnan(v) ? "NaN" : "infinite") +
                    ": check the inputs for NaN/Inf and lower the learning rate");
    if (value) *value = v;
    if (backward) {
      sf::require(loss.requires_grad(), SF_ERR_INVALID_ARGUMENT,
                  "prediction is not part of a training graph (forward in train mode first)");
      loss.backward();
    }
  })
}

int sf_optimizer_sgd(sf_network* n, double lr, double momentum, double weight_decay, int32_t nesterov,
                     sf_optimizer** out) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    sf::require(lr > 0 && std::isfinite(lr), SF_ERR_INVALID_ARGUMENT, "learning rate must be positive");
    sf::require(momentum >= 0 && weight_decay >= 0, SF_ERR_INVALID_ARGUMENT, "momentum and weight decay must be >= 0");
    auto options = torch::optim::SGDOptions(lr).momentum(momentum).weight_decay(weight_decay).nesterov(nesterov != 0);
    *out = new sf_optimizer{std::make_unique<torch::optim::SGD>(n->layers->parameters(), options)};
  })
}

int sf_optimizer_adam(sf_network* n, double lr, double beta1, double beta2, double eps, double weight_decay,
                      sf_optimizer** out) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    sf::require(lr > 0 && std::isfinite(lr), SF_ERR_INVALID_ARGUMENT, "learning rate must be positive");
    sf::require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, SF_ERR_INVALID_ARGUMENT, "Adam betas must be in [0, 1)");
    auto options = torch::optim::AdamOptions(lr).betas({beta1, beta2}).eps(eps).weight_decay(weight_decay);
    *out = new sf_optimizer{std::make_unique<torch::optim::Adam>(n->layers->parameters(), options)};
  })
}

int sf_optimizer_step(sf_optimizer* o) {
  SF_GUARD({
    sf::require_handle(o, "optimizer");
    o->impl->step();
  })
}

int sf_optimizer_zero_grad(sf_optimizer* o) {
  SF_GUARD({
    sf::require_handle(o, "optimizer");
    o->impl->zero_grad();
  })
}

int sf_optimizer_save_state(const sf_optimizer* o, sf_buffer** out) {
  SF_GUARD({
    sf::require_handle(o, "optimizer");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    torch::serialize::OutputArchive archive;
    o->impl->save(archive);
    std::vector<char> bytes;
    archive.save_to([&bytes](const void* data, size_t size) -> size_t {
      const char* p = static_cast<const char*>(data);
      bytes.insert(bytes.end(), p, p + size);
      return size;
    });
    *out = buffer_from(std::move(bytes));
  })
}

int sf_optimizer_load_state(sf_optimizer* o, const uint8_t* data, int64_t length) {
  SF_GUARD({
    sf::require_handle(o, "optimizer");
    sf::require(data != nullptr && length > 0, SF_ERR_CORRUPT_DATA, "optimizer state is empty");
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(reinterpret_cast<const char*>(data), static_cast<size_t>(length));
    } catch (const c10::Error& e) {
      throw sf::Error(SF_ERR_CORRUPT_DATA, std::string("optimizer state is not readable: ") + e.what_without_backtrace());
    }
    try {
      o->impl->load(archive);
    } catch (const c10::Error& e) {
      throw sf::Error(SF_ERR_STATE_MISMATCH,
                      std::string("optimizer state does not fit this optimizer: ") + e.what_without_backtrace());
    }
  })
}

void sf_optimizer_free(sf_optimizer* o) { delete o; }

}  // extern "C"

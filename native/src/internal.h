// Shared between the two translation units: handle structs, errors, the boundary guard.
#pragma once

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <vector>

#include "splitfn_engine.h"

struct sf_tensor {
  torch::Tensor value;
};

struct sf_buffer {
  std::vector<char> bytes;
};

struct sf_network {
  torch::nn::Sequential layers;
  std::vector<std::string> layer_text;  // the spec line of each layer, for error messages
  std::vector<int64_t> input_shape;     // per sample
  std::vector<int64_t> output_shape;    // per sample
  torch::Device device{torch::kCPU};
};

struct sf_optimizer {
  std::unique_ptr<torch::optim::Optimizer> impl;
};

namespace sf {

// An error we raise ourselves, with the status the caller should see.
struct Error : std::runtime_error {
  int status;
  Error(int s, const std::string& message) : std::runtime_error(message), status(s) {}
};

int fail(int status, const std::string& message);

std::string shape_text(c10::IntArrayRef shape);
torch::Device device_from(int32_t device);
void require(bool condition, int status, const std::string& message);

template <typename T>
void require_handle(const T* handle, const char* what) {
  if (handle == nullptr) throw Error(SF_ERR_INVALID_ARGUMENT, std::string(what) + " is null");
}

}  // namespace sf

// Every export runs its body inside this guard: no C++ exception may reach .NET.
#define SF_GUARD(...)                                                                   \
  try {                                                                                  \
    __VA_ARGS__;                                                                              \
    return SF_OK;                                                                        \
  } catch (const sf::Error& e) {                                                         \
    return sf::fail(e.status, e.what());                                                 \
  } catch (const c10::OutOfMemoryError& e) {                                             \
    return sf::fail(SF_ERR_DEVICE, std::string("out of memory: ") + e.what_without_backtrace()); \
  } catch (const c10::Error& e) {                                                        \
    return sf::fail(SF_ERR_TORCH, e.what_without_backtrace());                           \
  } catch (const std::bad_alloc&) {                                                      \
    return sf::fail(SF_ERR_DEVICE, "out of host memory");                                \
  } catch (const std::exception& e) {                                                    \
    return sf::fail(SF_ERR_UNKNOWN, e.what());                                           \
  } catch (...) {                                                                        \
    return sf::fail(SF_ERR_UNKNOWN, "unknown native exception");                         \
  }

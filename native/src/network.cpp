// Networks: the layer spec, forward, and PyTorch-compatible state dicts.
#include <algorithm>
#include <map>
#include <optional>

#include "internal.h"

namespace {

struct LayerLine {
  std::string name;
  std::map<std::string, std::string> options;
  std::string text;
};

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::vector<LayerLine> parse_spec(const std::string& spec) {
  std::vector<LayerLine> lines;
  std::string current;
  auto flush = [&]() {
    auto text = trim(current);
    current.clear();
    if (text.empty()) return;
    LayerLine line;
    line.text = text;
    std::istringstream words(text);
    words >> line.name;
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == word.size())
        throw sf::Error(SF_ERR_INVALID_SPEC, "layer " + std::to_string(lines.size()) + " '" + text +
                                                 "': option '" + word + "' is not key=value");
      line.options[word.substr(0, eq)] = word.substr(eq + 1);
    }
    lines.push_back(std::move(line));
  };
  for (char c : spec) {
    if (c == ';' || c == '\n') flush();
    else current.push_back(c);
  }
  flush();
  if (lines.empty()) throw sf::Error(SF_ERR_INVALID_SPEC, "network spec has no layers");
  return lines;
}

// Reads the options of one layer line, rejecting unknown and missing keys.
class Options {
 public:
  Options(const LayerLine& line, size_t index) : line_(line), index_(index) {}

  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt) {
    used_.push_back(key);
    auto it = line_.options.find(key);
    if (it == line_.options.end()) {
      if (fallback) return *fallback;
      throw error("missing option '" + key + "'");
    }
    try {
      size_t consumed = 0;
      const auto v = std::stoll(it->second, &consumed);
      if (consumed != it->second.size()) throw std::invalid_argument(key);
      if (v < 0) throw error("option '" + key + "' must not be negative");
      return v;
    } catch (const std::logic_error&) {
      throw error("option '" + key + "' must be an integer, got '" + it->second + "'");
    }
  }

  double real(const std::string& key, double fallback) {
    used_.push_back(key);
    auto it = line_.options.find(key);
    if (it == line_.options.end()) return fallback;
    try {
      size_t consumed = 0;
      const auto v = std::stod(it->second, &consumed);
      if (consumed != it->second.size()) throw std::invalid_argument(key);
      return v;
    } catch (const std::logic_error&) {
      throw error("option '" + key + "' must be a number, got '" + it->second + "'");
    }
  }

  void done() {
    for (const auto& [key, value] : line_.options)
      if (std::find(used_.begin(), used_.end(), key) == used_.end())
        throw error("unknown option '" + key + "'");
  }

  sf::Error error(const std::string& what) const {
    return sf::Error(SF_ERR_INVALID_SPEC, "layer " + std::to_string(index_) + " '" + line_.text + "': " + what);
  }

 private:
  const LayerLine& line_;
  size_t index_;
  std::vector<std::string> used_;
};

void positive(Options& o, int64_t v, const char* key) {
  if (v < 1) throw o.error(std::string("option '") + key + "' must be at least 1");
}

void add_layer(torch::nn::Sequential& seq, const LayerLine& line, size_t index) {
  Options o(line, index);
  const auto& n = line.name;
  if (n == "conv2d") {
    const auto in = o.integer("in"), out = o.integer("out"), k = o.integer("kernel");
    const auto stride = o.integer("stride", 1), padding = o.integer("padding", 0), bias = o.integer("bias", 1);
    positive(o, in, "in"); positive(o, out, "out"); positive(o, k, "kernel"); positive(o, stride, "stride");
    o.done();
    seq->push_back(torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(bias != 0)));
  } else if (n == "maxpool2d" || n == "avgpool2d") {
    const auto k = o.integer("kernel");
    const auto stride = o.integer("stride", k), padding = o.integer("padding", 0);
    positive(o, k, "kernel"); positive(o, stride, "stride");
    o.done();
    if (n == "maxpool2d")
      seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(k).stride(stride).padding(padding)));
    else
      seq->push_back(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(k).stride(stride).padding(padding)));
  } else if (n == "batchnorm2d" || n == "batchnorm1d") {
    const auto features = o.integer("features");
    const auto eps = o.real("eps", 1e-5), momentum = o.real("momentum", 0.1);
    positive(o, features, "features");
    o.done();
    if (n == "batchnorm2d")
      seq->push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(features).eps(eps).momentum(momentum)));
    else
      seq->push_back(torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(features).eps(eps).momentum(momentum)));
  } else if (n == "dropout") {
    const auto p = o.real("p", 0.5);
    if (!(p >= 0 && p < 1)) throw o.error("option 'p' must be in [0, 1)");
    o.done();
    seq->push_back(torch::nn::Dropout(torch::nn::DropoutOptions(p)));
  } else if (n == "relu") {
    o.done();
    seq->push_back(torch::nn::ReLU());
  } else if (n == "leaky_relu") {
    const auto slope = o.real("slope", 0.01);
    o.done();
    seq->push_back(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(slope)));
  } else if (n == "sigmoid") {
    o.done();
    seq->push_back(torch::nn::Sigmoid());
  } else if (n == "flatten") {
    o.done();
    seq->push_back(torch::nn::Flatten());
  } else if (n == "linear") {
    const auto in = o.integer("in"), out = o.integer("out"), bias = o.integer("bias", 1);
    positive(o, in, "in"); positive(o, out, "out");
    o.done();
    seq->push_back(torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias != 0)));
  } else {
    throw sf::Error(SF_ERR_INVALID_SPEC,
                    "layer " + std::to_string(index) + " '" + line.text + "': unknown layer '" + n +
                        "' (known: conv2d, maxpool2d, avgpool2d, batchnorm2d, batchnorm1d, dropout, relu, "
                        "leaky_relu, sigmoid, flatten, linear)");
  }
}

// Parameters then buffers of each layer in order: the order of PyTorch's state_dict().
std::vector<std::pair<std::string, torch::Tensor>> state_entries(const sf_network& n) {
  std::vector<std::pair<std::string, torch::Tensor>> entries;
  for (const auto& child : n.layers->named_children()) {
    for (const auto& p : child.value()->named_parameters(false)) entries.emplace_back(child.key() + "." + p.key(), p.value());
    for (const auto& b : child.value()->named_buffers(false)) entries.emplace_back(child.key() + "." + b.key(), b.value());
  }
  return entries;
}

torch::Tensor* find_state(sf_network& n, const std::string& name, std::vector<std::pair<std::string, torch::Tensor>>& entries) {
  for (auto& e : entries)
    if (e.first == name) return &e.second;
  return nullptr;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 6; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 6) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

void copy_shape(const std::vector<int64_t>& from, int64_t* shape, int32_t capacity, int32_t* rank) {
  sf::require(rank != nullptr, SF_ERR_INVALID_ARGUMENT, "rank pointer is null");
  *rank = static_cast<int32_t>(from.size());
  sf::require(capacity >= *rank, SF_ERR_SHAPE, "shape capacity is smaller than the rank");
  std::copy(from.begin(), from.end(), shape);
}

}  // namespace

extern "C" {

int sf_network_create(const char* spec, const int64_t* input_shape, int32_t input_rank, int32_t device,
                      sf_network** out) {
  SF_GUARD({
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    *out = nullptr;
    sf::require(spec != nullptr, SF_ERR_INVALID_SPEC, "network spec is null");
    sf::require(input_rank >= 1 && input_rank <= 4 && input_shape != nullptr, SF_ERR_SHAPE,
                "input shape must have 1 to 4 dimensions (per sample, no batch)");
    auto net = std::make_unique<sf_network>();
    net->input_shape.assign(input_shape, input_shape + input_rank);
    for (auto d : net->input_shape) sf::require(d >= 1, SF_ERR_SHAPE, "input dimensions must be at least 1");
    const auto lines = parse_spec(spec);
    for (size_t i = 0; i < lines.size(); ++i) {
      add_layer(net->layers, lines[i], i);
      net->layer_text.push_back(lines[i].text);
    }
    net->device = sf::device_from(device);

    // Dry run layer by layer so an inconsistent spec names the layer that breaks.
    {
      torch::NoGradGuard no_grad;
      net->layers->eval();
      std::vector<int64_t> batch_shape{2};
      batch_shape.insert(batch_shape.end(), net->input_shape.begin(), net->input_shape.end());
      auto x = torch::zeros(batch_shape);
      size_t i = 0;
      for (auto& layer : *net->layers) {
        try {
          x = layer.forward<torch::Tensor>(x);
        } catch (const c10::Error& e) {
          throw sf::Error(SF_ERR_SHAPE, "layer " + std::to_string(i) + " '" + net->layer_text[i] +
                                            "' cannot take input of shape " + sf::shape_text(x.sizes()) + ": " +
                                            e.what_without_backtrace());
        }
        ++i;
      }
      net->output_shape.assign(x.sizes().begin() + 1, x.sizes().end());
      net->layers->train();
    }
    if (net->device.is_cuda()) net->layers->to(net->device);
    *out = net.release();
  })
}

int sf_network_output_shape(const sf_network* n, int64_t* shape, int32_t capacity, int32_t* rank) {
  SF_GUARD({
    sf::require_handle(n, "network");
    copy_shape(n->output_shape, shape, capacity, rank);
  })
}

int sf_network_forward(sf_network* n, sf_tensor* input, int32_t train, int32_t need_input_grad, sf_tensor** out) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require_handle(input, "input");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    *out = nullptr;
    auto& x = input->value;
    const auto expected_rank = static_cast<int64_t>(n->input_shape.size()) + 1;
    const bool shape_ok = x.dim() == expected_rank && x.size(0) >= 1 &&
                          std::equal(n->input_shape.begin(), n->input_shape.end(), x.sizes().begin() + 1);
    sf::require(shape_ok, SF_ERR_SHAPE,
                "network expects input [batch, " + sf::shape_text(n->input_shape).substr(1) + " but got " +
                    sf::shape_text(x.sizes()));
    sf::require(x.is_floating_point(), SF_ERR_INVALID_ARGUMENT, "network input must be floating point");
    n->layers->train(train != 0);
    if (train != 0 && need_input_grad != 0) {
      if (x.is_leaf()) x.requires_grad_(true);
      else x.retain_grad();
    }
    torch::Tensor y;
    if (train != 0) {
      y = n->layers->forward(x.to(n->device, torch::kFloat32));
    } else {
      torch::NoGradGuard no_grad;
      y = n->layers->forward(x.to(n->device, torch::kFloat32));
    }
    *out = new sf_tensor{y};
  })
}

int sf_network_zero_grad(sf_network* n) {
  SF_GUARD({
    sf::require_handle(n, "network");
    n->layers->zero_grad();
  })
}

int sf_network_parameter_count(const sf_network* n, int64_t* count) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(count != nullptr, SF_ERR_INVALID_ARGUMENT, "count pointer is null");
    int64_t total = 0;
    for (const auto& p : n->layers->parameters()) total += p.numel();
    *count = total;
  })
}

int sf_network_state_names(const sf_network* n, sf_buffer** names) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(names != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    std::string joined;
    for (const auto& e : state_entries(*n)) joined += e.first + "\n";
    *names = new sf_buffer{std::vector<char>(joined.begin(), joined.end())};
  })
}

int sf_network_get_state(const sf_network* n, const char* name, sf_tensor** out) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(name != nullptr && out != nullptr, SF_ERR_INVALID_ARGUMENT, "name or output pointer is null");
    auto entries = state_entries(*n);
    auto* t = find_state(const_cast<sf_network&>(*n), name, entries);
    sf::require(t != nullptr, SF_ERR_STATE_MISMATCH, std::string("network has no state entry '") + name + "'");
    *out = new sf_tensor{t->detach().clone()};
  })
}

int sf_network_set_state(sf_network* n, const char* name, const sf_tensor* value) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require_handle(value, "value");
    sf::require(name != nullptr, SF_ERR_INVALID_ARGUMENT, "name is null");
    auto entries = state_entries(*n);
    auto* t = find_state(*n, name, entries);
    sf::require(t != nullptr, SF_ERR_STATE_MISMATCH, std::string("network has no state entry '") + name + "'");
    sf::require(t->sizes() == value->value.sizes(), SF_ERR_STATE_MISMATCH,
                std::string("state entry '") + name + "' has shape " + sf::shape_text(t->sizes()) + ", value has " +
                    sf::shape_text(value->value.sizes()));
    torch::NoGradGuard no_grad;
    t->copy_(value->value);
  })
}

int sf_network_save_state(const sf_network* n, sf_buffer** out) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(out != nullptr, SF_ERR_INVALID_ARGUMENT, "output handle pointer is null");
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& e : state_entries(*n)) dict.insert(e.first, e.second.detach().to(torch::kCPU).contiguous());
    *out = new sf_buffer{torch::pickle_save(c10::IValue(dict))};
  })
}

int sf_network_load_state(sf_network* n, const uint8_t* data, int64_t length) {
  SF_GUARD({
    sf::require_handle(n, "network");
    sf::require(data != nullptr && length > 0, SF_ERR_CORRUPT_DATA, "weights are empty");
    c10::IValue value;
    try {
      value = torch::pickle_load(std::vector<char>(data, data + length));
    } catch (const std::exception& e) {
      throw sf::Error(SF_ERR_CORRUPT_DATA, std::string("weights are not a readable PyTorch state dict (torch.save of a "
                                                       "dict of tensors): ") + e.what());
    }
    sf::require(value.isGenericDict(), SF_ERR_CORRUPT_DATA, "weights file does not hold a dict of tensors");
    auto dict = value.toGenericDict();
    auto entries = state_entries(*n);

    std::vector<std::string> missing, unexpected, mismatched;
    for (const auto& e : entries)
      if (!dict.contains(c10::IValue(e.first))) missing.push_back(e.first);
    for (const auto& item : dict) {
      sf::require(item.key().isString() && item.value().isTensor(), SF_ERR_CORRUPT_DATA,
                  "weights dict holds an entry that is not a name -> tensor pair");
      const auto key = item.key().toStringRef();
      auto* t = find_state(*n, key, entries);
      if (t == nullptr) unexpected.push_back(key);
      else if (t->sizes() != item.value().toTensor().sizes())
        mismatched.push_back(key + " " + sf::shape_text(item.value().toTensor().sizes()) + " vs " + sf::shape_text(t->sizes()));
    }
    if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
      std::string message = "weights belong to a different architecture:";
      if (!missing.empty()) message += " missing " + list_names(missing) + ";";
      if (!unexpected.empty()) message += " unexpected " + list_names(unexpected) + ";";
      if (!mismatched.empty()) message += " shape mismatch " + list_names(mismatched) + ";";
      throw sf::Error(SF_ERR_STATE_MISMATCH, message);
    }
    torch::NoGradGuard no_grad;
    for (auto& e : entries) {
      auto v = dict.at(c10::IValue(e.first)).toTensor();
      e.second.copy_(v.to(e.second.device(), e.second.scalar_type()));
    }
  })
}

void sf_network_free(sf_network* n) { delete n; }

}  // extern "C"

// TensorDict: name -> tensor in insertion order, like PyTorch's OrderedDict state dicts.
// A state dict is one; so is what a safetensors file holds.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace vc::nn {

class TensorDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  // Inserts, or replaces the tensor under an existing name (keeping its position).
  void set(const std::string& name, Tensor t) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      items_[it->second].second = std::move(t);
      return;
    }
    index_.emplace(name, items_.size());
    items_.emplace_back(name, std::move(t));
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const Tensor& at(const std::string& name) const {
    auto it = index_.find(name);
    VC_CHECK(it != index_.end(), "TensorDict: no tensor named '", name, "'");
    return items_[it->second].second;
  }
  // Null when absent.
  const Tensor* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& it : items_) k.push_back(it.first);
    return k;
  }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<Item>::const_iterator begin() const { return items_.begin(); }
  std::vector<Item>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

using StateDict = TensorDict;

}  // namespace vc::nn

#pragma once
// A small CLIP for Fashion-MNIST: an image tower (a small CNN) and a text
// tower (token and position embeddings, an MLP over tokens, masked mean
// pooling), both ending in unit vectors of one width, trained with the
// symmetric InfoNCE loss and a learned temperature on images and their
// generated captions. Exported to TorchScript for the `tr0n` tool and Python.
#include "export.hpp"
#include "models.hpp"
#include "captions.hpp"

#include <torch/nn/functional/normalization.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <cmath>
#include <filesystem>
#include <string>

namespace fashion_text {

inline torch::Tensor unit(const torch::Tensor& h) {
  return torch::nn::functional::normalize(h, torch::nn::functional::NormalizeFuncOptions().dim(1).eps(1e-12));
}

/// Images [B, 1, 28, 28] in [0, 1] -> unit embeddings [B, D].
struct image_tower_impl : torch::nn::Module {
  explicit image_tower_impl(int64_t dim)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).stride(2).padding(1)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).stride(2).padding(1)))),
        fc1(register_module("fc1", torch::nn::Linear(32 * 7 * 7, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, dim))),
        dim(dim) {}
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(conv2(torch::relu(conv1(x))));
    return unit(fc2(torch::relu(fc1(h.flatten(1)))));
  }
  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
  int64_t dim;
};
TORCH_MODULE_IMPL(image_tower, image_tower_impl);

/// Token ids [B, L] (0: padding) -> unit embeddings [B, D].
struct text_tower_impl : torch::nn::Module {
  text_tower_impl(int64_t vocabulary_size, int64_t context, int64_t dim)
      : emb(register_module("emb", torch::nn::Embedding(vocabulary_size, 64))),
        pos(register_parameter("pos", 0.02 * torch::randn({context, 64}))),
        fc1(register_module("fc1", torch::nn::Linear(64, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 128))),
        proj(register_module("proj", torch::nn::Linear(128, dim))) {}
  torch::Tensor forward(const torch::Tensor& tokens) {
    auto h = fc2(torch::relu(fc1(emb(tokens) + pos)));
    auto mask = (tokens != 0).to(h.scalar_type()).unsqueeze(-1);
    auto pooled = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0);
    return unit(proj(torch::relu(pooled)));
  }
  torch::nn::Embedding emb;
  torch::Tensor pos;
  torch::nn::Linear fc1, fc2, proj;
};
TORCH_MODULE_IMPL(text_tower, text_tower_impl);

struct clip_impl : torch::nn::Module {
  explicit clip_impl(int64_t dim)
      : image(register_module("image", image_tower(dim))),
        text(register_module("text", text_tower(static_cast<int64_t>(vocabulary().size()), context_length, dim))),
        logit_scale(register_parameter("logit_scale", torch::full({}, std::log(1 / 0.07)))) {}
  /// exp(logit_scale), capped at 100 as in CLIP.
  torch::Tensor scale() const { return logit_scale.clamp_max(std::log(100.0)).exp(); }
  image_tower image;
  text_tower text;
  torch::Tensor logit_scale;
};
TORCH_MODULE_IMPL(clip, clip_impl);

/// The image tower as a tr0n encoder (the auxiliary model f of the text job).
struct image_encoder {
  using tr0n_tag = tr0n::encoder_tag;
  image_tower tower;
  torch::Tensor forward(const torch::Tensor& x) { return tower->forward(x); }
  int64_t condition_dim() const { return tower->dim; }
};

/// Symmetric InfoNCE over a batch. `positive[i][j]`: caption j is true of
/// image i. Captions repeat within a batch ("sneaker" describes every
/// sneaker), so each side maximises the probability of all its true partners
/// rather than of the diagonal alone, which would push true pairs apart.
inline torch::Tensor info_nce(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                              const torch::Tensor& positive, const torch::Tensor& scale) {
  auto logits = scale * image_emb.matmul(text_emb.t());
  const double neg_inf = -std::numeric_limits<double>::infinity();
  auto side = [&](const torch::Tensor& l, const torch::Tensor& pos) {
    return (l.logsumexp(1) - l.masked_fill(pos.logical_not(), neg_inf).logsumexp(1)).mean();
  };
  return 0.5 * (side(logits, positive) + side(logits.t(), positive.t()));
}

/// Trains `model` on `images` with labels and attribute values [N, 2]. Each
/// step captions every image afresh: a random template, and each of its
/// attributes named with probability 1/2 (never the middle tercile's, which
/// has no word).
inline void train_clip(clip& model, const fashion::split& train, const torch::Tensor& attributes, int64_t epochs,
                       int64_t batch, double lr) {
  const auto table = caption_table::make(tokenizer());
  model->train();
  fashion::fit(model->parameters(), train.images.size(0), epochs, batch, lr, "CLIP", [&](const torch::Tensor& idx) {
    const auto n = idx.size(0);
    auto k = train.labels.index_select(0, idx), a = attributes.index_select(0, idx);
    auto t = torch::randint(templates, {n}, torch::kLong);
    auto b = a.select(1, 0) * (torch::rand({n}) < 0.5).to(torch::kLong);
    auto s = a.select(1, 1) * (torch::rand({n}) < 0.5).to(torch::kLong);
    auto tokens = table.tokens.index_select(0, caption_table::rows(t, k, b, s));
    auto positive = (k.unsqueeze(1) == k.unsqueeze(0)) &
                    ((b.unsqueeze(0) == 0) | (b.unsqueeze(0) == a.select(1, 0).unsqueeze(1))) &
                    ((s.unsqueeze(0) == 0) | (s.unsqueeze(0) == a.select(1, 1).unsqueeze(1)));
    return info_nce(model->image->forward(train.images.index_select(0, idx)), model->text->forward(tokens), positive,
                    model->scale());
  });
  model->eval();
}

/// TorchScript copies: `clip_image.ts.pt` (images -> unit embeddings) and
/// `clip_text.ts.pt` (token ids -> unit embeddings, with its `vocabulary` and
/// `context_length` attributes: the tokenisation of `tr0n::word_tokenizer`).
inline void export_image_tower(image_tower& tower, const std::filesystem::path& path) {
  torch::jit::Module m("fashion_clip_image");
  fashion::detail::copy_layer(m, "conv1", tower->conv1);
  fashion::detail::copy_layer(m, "conv2", tower->conv2);
  fashion::detail::copy_layer(m, "fc1", tower->fc1);
  fashion::detail::copy_layer(m, "fc2", tower->fc2);
  m.define(R"(
def forward(self, x):
    h = torch.relu(torch.conv2d(x, self.conv1_weight, self.conv1_bias, [2, 2], [1, 1]))
    h = torch.relu(torch.conv2d(h, self.conv2_weight, self.conv2_bias, [2, 2], [1, 1]))
    h = torch.relu(torch.linear(h.flatten(1), self.fc1_weight, self.fc1_bias))
    h = torch.linear(h, self.fc2_weight, self.fc2_bias)
    return h / torch.sqrt((h * h).sum(1, keepdim=True)).clamp_min(1e-12)
)");
  torch::NoGradGuard no_grad;
  auto x = torch::rand({8, 1, 28, 28});
  fashion::detail::save_checked(m, path, x, tower->forward(x));
}

inline void export_text_tower(text_tower& tower, const std::filesystem::path& path) {
  torch::jit::Module m("fashion_clip_text");
  m.register_parameter("emb_weight", tower->emb->weight.detach().clone(), false);
  m.register_parameter("pos", tower->pos.detach().clone(), false);
  fashion::detail::copy_layer(m, "fc1", tower->fc1);
  fashion::detail::copy_layer(m, "fc2", tower->fc2);
  fashion::detail::copy_layer(m, "proj", tower->proj);
  const auto words = vocabulary();
  m.register_attribute("vocabulary", c10::ListType::ofStrings(), c10::List<std::string>(words));
  m.register_attribute("context_length", c10::IntType::get(), context_length);
  m.define(R"(
def forward(self, tokens):
    h = torch.embedding(self.emb_weight, tokens) + self.pos
    h = torch.linear(torch.relu(torch.linear(h, self.fc1_weight, self.fc1_bias)), self.fc2_weight, self.fc2_bias)
    mask = (tokens != 0).to(h.dtype).unsqueeze(-1)
    pooled = (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    out = torch.linear(torch.relu(pooled), self.proj_weight, self.proj_bias)
    return out / torch.sqrt((out * out).sum(1, keepdim=True)).clamp_min(1e-12)
)");
  torch::NoGradGuard no_grad;
  auto tokens = tokenizer().encode({"a photo of a dark sneaker", "bag", "an ankle boot"});
  fashion::detail::save_checked(m, path, tokens, tower->forward(tokens));
}

}  // namespace fashion_text

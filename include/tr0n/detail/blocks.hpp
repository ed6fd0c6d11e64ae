#pragma once
// Private: the index arithmetic of consecutive blocks of rows (a run's stream
// blocks, a sampler's chunks), written once as a range-v3 view.
#include <range/v3/view/iota.hpp>
#include <range/v3/view/transform.hpp>

#include <algorithm>
#include <cstdint>

namespace tr0n::detail {

/// Block `index` of a split: rows `[first, first + count)`.
struct block_span {
  int64_t index, first, count;
};

/// `rows` rows in consecutive blocks of `block_rows` (the last one shorter),
/// `blocks` of them: a view of their spans, computed as it is walked.
inline auto block_spans(int64_t rows, int64_t block_rows, int64_t blocks) {
  return ranges::views::iota(int64_t{0}, blocks) | ranges::views::transform([=](int64_t b) {
           const int64_t first = b * block_rows;
           return block_span{b, first, std::min(block_rows, rows - first)};
         });
}

/// The same, as many blocks as `rows` needs.
inline auto block_spans(int64_t rows, int64_t block_rows) {
  return block_spans(rows, block_rows, (rows + block_rows - 1) / block_rows);
}

}  // namespace tr0n::detail

#pragma once
/// \file
/// Moved to `<tr0n/text/word_tokenizer.hpp>`; this header forwards there and will go in a later release.
#include <tr0n/text/word_tokenizer.hpp>

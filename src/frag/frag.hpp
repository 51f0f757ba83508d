// frag/frag.hpp — the frag layer's facade: what the layers above may use of it.
// The page_frag allocator.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "frag/frag_alloc.hpp"  // IWYU pragma: export

// page/page.hpp — the page layer's facade: what the layers above may use of it.
// The page allocator: buddy zones, per-thread page caches and their registry.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "page/page_alloc.hpp"  // IWYU pragma: export

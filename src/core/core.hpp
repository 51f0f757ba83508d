// core/core.hpp — the core layer's facade: what the layers above may use of it.
// The memmap (one word per page, zones, metadata accounting) and the hierarchical bitmap.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "core/hbitmap.hpp"  // IWYU pragma: export
#include "core/diagnose.hpp"  // IWYU pragma: export
#include "core/memmap.hpp"  // IWYU pragma: export

// zsmalloc/zsmalloc.hpp — the zsmalloc layer's facade: what the layers above may use of it.
// The zsmalloc pool.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "zsmalloc/zs_pool.hpp"  // IWYU pragma: export

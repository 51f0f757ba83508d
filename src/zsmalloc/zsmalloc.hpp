// zsmalloc/zsmalloc.hpp — the zsmalloc layer's facade: what the layers above may use of it.
// The pool (zs_pool.hpp); the api layer creates pools and wraps them as memdesc::ZsPool.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "zsmalloc/zs_pool.hpp"  // IWYU pragma: export

// folio/folio.hpp — the folio layer's facade: what the layers above may use of it.
// Folio descriptors and the folio allocator.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "folio/folio_alloc.hpp"  // IWYU pragma: export

// platform/platform.hpp — the platform layer's facade: what the layers above may use of it.
// The OS calls: reserve, commit, purge, release.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "platform/os.hpp"  // IWYU pragma: export

// base/base.hpp — the base layer's facade: what the layers above may use of it.
// Bits, checks, compiler hints, fault injection, lock ranks and the fatal reporters.
// Layers above include this header only (scripts/check-layers); files of the layer include its
// headers directly.
#pragma once
#include "base/asan.hpp"  // IWYU pragma: export
#include "base/bits.hpp"  // IWYU pragma: export
#include "base/check.hpp"  // IWYU pragma: export
#include "base/compiler.hpp"  // IWYU pragma: export
#include "base/fault.hpp"  // IWYU pragma: export
#include "base/last_error.hpp"  // IWYU pragma: export
#include "base/lock_rank.hpp"  // IWYU pragma: export
#include "base/report.hpp"  // IWYU pragma: export

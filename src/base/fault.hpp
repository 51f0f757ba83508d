// base/fault.hpp — the fault-injection switch behind memdesc/fault.hpp. Fast paths test one
// relaxed atomic flag; the counting is out of line.
#pragma once
#include <atomic>
#include <memdesc/fault.hpp>

#include "base/compiler.hpp"

namespace memdesc::fault {

enum class Site { Page, Descriptor };

inline std::atomic<bool> g_armed{false};
bool should_fail_slow(Site s);
void arm_from_environment();  // reads MEMDESC_FAIL_* once per process

// Fast paths test only this, and call should_fail_slow from their slow path when it is set.
MEMDESC_FAST_PATH bool armed() { return MEMDESC_UNLIKELY(g_armed.load(std::memory_order_relaxed)); }

MEMDESC_FAST_PATH bool should_fail(Site s) {
  return MEMDESC_UNLIKELY(g_armed.load(std::memory_order_relaxed)) && should_fail_slow(s);
}

}  // namespace memdesc::fault

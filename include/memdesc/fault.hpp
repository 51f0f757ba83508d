// memdesc/fault.hpp — fault injection, like the kernel's fail_page_alloc and failslab.
// Layer: base (its public face).
//
// When armed, every Nth page allocation and/or every Nth descriptor allocation fails as if
// memory were exhausted (null + last_error() == out_of_memory). Counting is process-wide.
// Arm from code, or from the environment before the first arena is created:
//   MEMDESC_FAIL_PAGE_EVERY=N   MEMDESC_FAIL_DESC_EVERY=N
#pragma once
#include <cstdint>

namespace memdesc {

struct FaultCounts {
  std::uint64_t page_failed = 0, desc_failed = 0;
};

// 0 disables a site. Resets the counters.
void set_fault_injection(std::uint64_t page_every, std::uint64_t desc_every);
FaultCounts fault_injection_counts();

}  // namespace memdesc

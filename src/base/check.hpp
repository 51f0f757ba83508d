// base/check.hpp — assertion levels.
//
// MEMDESC_ASSERT(cond): checked builds only (MEMDESC_CHECKED); internal consistency.
// MEMDESC_CHECK(id, cond): always on; an integrity check whose failure is a fatal report naming
//                          the invariant ID (docs/INVARIANTS.md).
#pragma once
#include "base/compiler.hpp"
#include "base/report.hpp"

#define MEMDESC_CHECK(id, cond)                                                         \
  do {                                                                                  \
    if (MEMDESC_UNLIKELY(!(cond)))                                                      \
      ::memdesc::report_invariant(id, "%s failed at %s:%d", #cond, __FILE__, __LINE__); \
  } while (0)

#if defined(MEMDESC_CHECKED)
#define MEMDESC_ASSERT(cond) MEMDESC_CHECK("ASSERT", cond)
#else
#define MEMDESC_ASSERT(cond) \
  do {                       \
  } while (0)
#endif

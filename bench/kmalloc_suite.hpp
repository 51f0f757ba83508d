// bench/kmalloc_suite.hpp — `memdesc bench kmalloc`: kmalloc/kfree against malloc peers.
#pragma once
#include <cstddef>

#include "suite.hpp"

namespace memdesc::bench {

int run_kmalloc_suite(const SuiteOptions& o);

}  // namespace memdesc::bench

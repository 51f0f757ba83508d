// bench/pages_suite.hpp — `memdesc bench pages`: page allocation against aligned_alloc peers.
#pragma once
#include "suite.hpp"

namespace memdesc::bench {

// Runs the suite and prints its report. Returns the exit status.
int run_pages_suite(const SuiteOptions& o);

}  // namespace memdesc::bench

// bench/zs_suite.hpp — `memdesc bench zsmalloc`: zsmalloc against malloc peers.
#pragma once
#include "suite.hpp"

namespace memdesc::bench {
int run_zs_suite(const SuiteOptions& o);
}  // namespace memdesc::bench

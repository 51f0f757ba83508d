// bench/frag_suite.hpp — `memdesc bench frag`: the page_frag cache against malloc peers.
#pragma once
#include "suite.hpp"

namespace memdesc::bench {

int run_frag_suite(const SuiteOptions& o);

}  // namespace memdesc::bench

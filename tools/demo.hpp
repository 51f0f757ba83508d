// tools/demo.hpp — the demo workload behind `memdesc demo`.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace memdesc::tools {

struct DemoOptions {
  std::size_t arena_bytes = std::size_t{1} << 30;
  unsigned threads = 2;
  unsigned ops_per_thread = 200000;
  double fill_fraction = 0.6;  // share of the arena the threads hold at the peak
  std::string png = "memdesc-arena.png";
  bool json = false;
};

// Runs the workload, prints the report (text or JSON) to stdout. Returns the exit status.
int run_demo(const DemoOptions& o);

}  // namespace memdesc::tools

// tools/zs_tools.hpp — the zsmalloc subcommands of the memdesc command.
#pragma once
#include <string>
#include <vector>

namespace memdesc::tools {

// The class table for `chain`, and the distinct-class / huge-watermark summary for chains 4, 5,
// 8, 12 and 16 checked against the kernel documentation's table. Returns 1 on a mismatch.
int run_zs_classes(unsigned chain, bool json);
// Fills a pool with `objects` random objects, frees half, prints the per-class statistics
// (like the kernel's debugfs classes file) before and after compaction.
int run_zs_stats(unsigned objects, bool json);
// Stores the files page by page in a compressed page store, reads every page back and
// compares, compacts, and prints zram's mm_stat figures. Returns 1 if any page differs.
int run_zram(const std::vector<std::string>& files, const std::string& algo, bool json);

}  // namespace memdesc::tools

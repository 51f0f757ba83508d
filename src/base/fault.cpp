// base/fault.cpp — see base/fault.hpp.
#include "base/fault.hpp"

#include <cstdlib>
#include <mutex>

namespace memdesc {
namespace fault {
namespace {

struct Counter {
  std::atomic<std::uint64_t> every{0}, calls{0}, failed{0};
  bool tick() {
    std::uint64_t n = every.load(std::memory_order_relaxed);
    if (n == 0) return false;
    if ((calls.fetch_add(1, std::memory_order_relaxed) + 1) % n != 0) return false;
    failed.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};
Counter g_page, g_desc;

}  // namespace

bool should_fail_slow(Site s) { return (s == Site::Page ? g_page : g_desc).tick(); }

void arm_from_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* p = std::getenv("MEMDESC_FAIL_PAGE_EVERY");
    const char* d = std::getenv("MEMDESC_FAIL_DESC_EVERY");
    if (p || d) set_fault_injection(p ? std::strtoull(p, nullptr, 10) : 0, d ? std::strtoull(d, nullptr, 10) : 0);
  });
}

}  // namespace fault

void set_fault_injection(std::uint64_t page_every, std::uint64_t desc_every) {
  using fault::g_desc;
  using fault::g_page;
  for (auto* c : {&g_page, &g_desc}) c->calls.store(0), c->failed.store(0);
  g_page.every.store(page_every);
  g_desc.every.store(desc_every);
  fault::g_armed.store(page_every != 0 || desc_every != 0);
}

FaultCounts fault_injection_counts() {
  return {fault::g_page.failed.load(), fault::g_desc.failed.load()};
}

}  // namespace memdesc

// base/report.cpp — the fatal reporters. Output goes to stderr with one write(2), then abort().
#include "base/report.hpp"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace memdesc {
namespace {

[[noreturn]] void die(const char* kind, const char* fmt, va_list ap) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "memdesc: %s: ", kind);
  if (n < 0) n = 0;
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n), fmt, ap);
  size_t len = static_cast<size_t>(n) + (m > 0 ? static_cast<size_t>(m) : 0);
  if (len > sizeof buf - 2) len = sizeof buf - 2;
  buf[len++] = '\n';
  ssize_t w = ::write(STDERR_FILENO, buf, len);
  (void)w;
  std::abort();
}

[[noreturn]] __attribute__((format(printf, 2, 3))) void die(const char* kind, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  die(kind, fmt, ap);
}

}  // namespace

void report_double_free(const char* op, const void* addr, std::uint64_t pfn, const char* word) {
  die("double free", "%s(%p): pfn %llu is already free (word: %s)", op, addr,
      static_cast<unsigned long long>(pfn), word);
}

void report_bad_descriptor(const char* op, const void* desc, const char* type, const char* why) {
  die("bad descriptor", "%s(%s %p): %s", op, type, desc, why);
}

void report_bad_handle(const char* op, std::uint64_t handle, const char* pool, const char* why) {
  die("bad handle", "%s(pool %s, handle 0x%llx): %s", op, pool, static_cast<unsigned long long>(handle), why);
}

void report_foreign_pointer(const char* op, const void* addr, const void* lo, const void* hi) {
  die("invalid pointer", "%s(%p): address is outside the arena [%p, %p)", op, addr, lo, hi);
}

void report_not_block_start(const char* op, const void* addr, const void* start, unsigned order) {
  die("invalid pointer", "%s(%p): address is inside the order-%u block that starts at %p, not at its start",
      op, addr, order, start);
}

void report_wrong_type(const char* op, const void* addr, const char* expected, const char* word) {
  die("wrong type", "%s(%p): expected %s, page word is %s", op, addr, expected, word);
}

void report_bad_object(const char* op, const void* addr, const char* cache, const char* why) {
  die("invalid object", "%s(%p): cache %s: %s", op, addr, cache, why);
}

void report_cache_leak(const char* cache, unsigned long long objects) {
  die("leak", "kmem_cache_destroy(%s): %llu object%s still allocated", cache, objects, objects == 1 ? "" : "s");
}

void report_bad_argument(const char* op, const char* why) { die("bad argument", "%s: %s", op, why); }

void report_invariant(const char* id, const char* fmt, ...) {
  char kind[64];
  std::snprintf(kind, sizeof kind, "invariant %s violated", id);
  va_list ap;
  va_start(ap, fmt);
  die(kind, fmt, ap);
}

void report_lock_order(const char* acquiring, const char* held) {
  die("lock order", "taking %s while holding %s (see base/lock_rank.hpp)", acquiring, held);
}

}  // namespace memdesc

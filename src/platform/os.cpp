// platform/os.cpp — Linux implementation of platform/os.hpp.
#include "platform/os.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "base/base.hpp"

namespace memdesc::platform {

Result<void*> reserve(std::size_t size, std::size_t align) {
  if (size == 0 || !is_pow2(align) || align < os_page_size())
    return Error{Errc::invalid_config, 0, "reserve: size 0 or bad alignment"};
  // Over-reserve by `align`, then trim both ends so the base is aligned.
  std::size_t span = size + align;
  void* raw = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return Error{Errc::os_error, errno, "reserve: mmap"};
  auto lo = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t base = align_up(lo, align);
  if (base > lo) ::munmap(raw, base - lo);
  std::uintptr_t end = base + size, raw_end = lo + span;
  if (raw_end > end) ::munmap(reinterpret_cast<void*>(end), raw_end - end);
  return reinterpret_cast<void*>(base);
}

Error commit(void* p, std::size_t size) {
  if (::mprotect(p, size, PROT_READ | PROT_WRITE) != 0) return Error{Errc::os_error, errno, "commit: mprotect"};
  return Error::none();
}

Error purge(void* p, std::size_t size) {
  if (::madvise(p, size, MADV_DONTNEED) != 0) return Error{Errc::os_error, errno, "purge: madvise"};
  return Error::none();
}

void release(void* p, std::size_t size) {
  if (p) ::munmap(p, size);
}

Result<void*> reserve_committed(std::size_t size, std::size_t align) {
  size = align_up(size, os_page_size());
  auto r = reserve(size, align);
  if (!r.ok()) return r;
  if (Error e = commit(r.value(), size)) {
    release(r.value(), size);
    return e;
  }
  return r;
}

std::size_t os_page_size() {
  static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

std::size_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * os_page_size() : 0;
}

std::size_t resident_bytes(const void* p, std::size_t size) {
  std::size_t ps = os_page_size();
  std::size_t n = div_ceil(size, ps);
  std::size_t total = 0;
  std::vector<unsigned char> vec(std::min<std::size_t>(n, 1 << 20));
  auto base = reinterpret_cast<std::uintptr_t>(p);
  for (std::size_t done = 0; done < n;) {
    std::size_t chunk = std::min(vec.size(), n - done);
    if (::mincore(reinterpret_cast<void*>(base + done * ps), chunk * ps, vec.data()) != 0) return total;
    for (std::size_t i = 0; i < chunk; ++i) total += (vec[i] & 1) ? ps : 0;
    done += chunk;
  }
  return total;
}

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

static_assert(sizeof(std::atomic<std::uint32_t>) == 4, "futex words are plain 32-bit integers");

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  // EINTR, EAGAIN (the word changed) and spurious wake-ups all mean "look again".
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake(std::atomic<std::uint32_t>* word, int n) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, n, nullptr, nullptr, 0);
}

}  // namespace memdesc::platform

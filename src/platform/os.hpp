// platform/os.hpp — the only place memdesc talks to the operating system about memory.
//
// Contract (all sizes and addresses are multiples of the OS page size):
//   reserve  — take a range of address space with no commit charge and no access (PROT_NONE,
//              MAP_NORESERVE); aligned to `align`. Costs nothing per byte.
//   commit   — make a reserved range readable and writable. Pages are materialised on first
//              touch and read as zero until written; still no commit charge (MAP_NORESERVE).
//   purge    — give the physical memory of a committed range back to the OS: RSS falls and the
//              range reads as zero afterwards. The range stays committed.
//   release  — return the address space.
//   futex    — sleep until a 32-bit word changes / wake sleepers on it (process-private).
// Nothing above this layer calls mmap, mprotect, madvise, munmap or futex.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <memdesc/result.hpp>

namespace memdesc::platform {

Result<void*> reserve(std::size_t size, std::size_t align);
Error commit(void* p, std::size_t size);
Error purge(void* p, std::size_t size);
void release(void* p, std::size_t size);

// Reserve + commit in one step: a zero-filled metadata array that costs RSS only where touched.
Result<void*> reserve_committed(std::size_t size, std::size_t align);

std::size_t os_page_size();
std::size_t rss_bytes();                                 // resident set of the whole process
std::size_t resident_bytes(const void* p, std::size_t size);  // resident part of one range (mincore)
std::uint64_t now_ns();                                  // monotonic clock

// Sleeps while *word == expected (returns at once if it differs; may return spuriously: the
// caller re-checks in a loop). futex_wake wakes up to n sleepers on word.
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected);
void futex_wake(std::atomic<std::uint32_t>* word, int n);

}  // namespace memdesc::platform

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
// Nothing above this layer calls mmap, mprotect, madvise or munmap.
#pragma once
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

}  // namespace memdesc::platform

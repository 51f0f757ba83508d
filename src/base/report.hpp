// base/report.hpp — every fatal report of misuse or corruption lives here.
//
// Reports are fatal: each function prints one line that starts with "memdesc: <kind>:" and names
// the operation, the address and what was found, then aborts. They are the only way memdesc
// reacts to misuse (double free, invalid or foreign pointer, wrong type); recoverable failures
// (out of memory) return an error instead (memdesc/result.hpp). Nothing here allocates.
#pragma once
#include <cstdint>

namespace memdesc {

// A block was freed that is already free. `word` describes the page word found.
[[noreturn]] void report_double_free(const char* op, const void* addr, std::uint64_t pfn, const char* word);
// The address is not inside the arena the operation was called on.
[[noreturn]] void report_foreign_pointer(const char* op, const void* addr, const void* lo, const void* hi);
// The address is inside a block but not at its first byte.
[[noreturn]] void report_not_block_start(const char* op, const void* addr, const void* start, unsigned order);
// The page word has a type that the operation does not accept.
[[noreturn]] void report_wrong_type(const char* op, const void* addr, const char* expected, const char* word);
// An argument is out of range or inconsistent (e.g. an order above the maximum).
[[noreturn]] void report_bad_argument(const char* op, const char* why);
// An object operation on a slab object that is wrong: `why` says how (wrong cache, not at an
// object's start, freed twice, never allocated, red zone or poison overwritten).
[[noreturn]] void report_bad_object(const char* op, const void* addr, const char* cache, const char* why);
// An operation on a descriptor (folio, page_frag block, ...) in a state that forbids it: `why`
// says which (a reference dropped below zero, freed while locked, unlock of an unlocked lock).
[[noreturn]] void report_bad_descriptor(const char* op, const void* desc, const char* type, const char* why);
// A zsmalloc handle that names no live object of the pool it was passed to: `why` says how
// (outside the pool's handle cache, freed, forged, a length beyond the object).
[[noreturn]] void report_bad_handle(const char* op, std::uint64_t handle, const char* pool, const char* why);
// A cache destroyed while objects are still allocated.
[[noreturn]] void report_cache_leak(const char* cache, unsigned long long objects);
// A documented invariant does not hold. `id` is its name (e.g. "BUDDY-ALIGN").
[[noreturn]] void report_invariant(const char* id, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// A lock was taken out of the order fixed in base/lock_rank.hpp.
[[noreturn]] void report_lock_order(const char* acquiring, const char* held);

}  // namespace memdesc

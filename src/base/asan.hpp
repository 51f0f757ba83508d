// base/asan.hpp — telling AddressSanitizer which bytes of the arena no one may touch.
//
// In ASan builds every allocator poisons what its users may not touch — free pages, free slab
// slots and the slack after an object, freed page fragments, free zsmalloc slots — and
// unpoisons what it hands out, so a use after free or an overflow inside the arena is an ASan
// report at the faulting access (docs/TESTING.md, "ASan inside the arena"). Allocator code
// that reads or writes free memory itself (freelist links, poison patterns, page copies) is
// marked MEMDESC_NO_ASAN. Elsewhere every call here compiles to nothing.
#pragma once
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define MEMDESC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEMDESC_ASAN 1
#endif
#endif

#if defined(MEMDESC_ASAN)
#include <sanitizer/asan_interface.h>
#define MEMDESC_NO_ASAN __attribute__((no_sanitize("address")))
#else
#define MEMDESC_NO_ASAN
#endif

namespace memdesc::asan {

#if defined(MEMDESC_ASAN)
inline constexpr bool kOn = true;
inline void poison(const void* p, std::size_t n) { __asan_poison_memory_region(p, n); }
inline void unpoison(const void* p, std::size_t n) { __asan_unpoison_memory_region(p, n); }
#else
inline constexpr bool kOn = false;
inline void poison(const void*, std::size_t) {}
inline void unpoison(const void*, std::size_t) {}
#endif

// Arenas up to this size are poisoned whole when created (their shadow costs an eighth of it);
// in larger ones only memory that has been handed out and freed again is poisoned.
inline constexpr std::size_t kPoisonWholeArenaMax = std::size_t{4} << 30;

}  // namespace memdesc::asan

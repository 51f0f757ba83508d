// slab/slab_desc.hpp — the slab descriptor (struct Slab) and the codec of the freelist links
// that free slots carry.
//
// A slab is a naturally aligned block of 2^order pages cut into `objects` slots; its descriptor
// (32 bytes) comes from the descriptor cache, or is object 0 of the slab itself for that cache
// (SLAB-SELF). Slabs are linked into their cache's lists by pfn (32 bits, kNil = none).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/base.hpp"

namespace memdesc::slab {

class KmemCache;

inline constexpr std::uint32_t kNil = ~std::uint32_t{0};  // "no slab" in pfn-linked lists

enum class SlabList : std::uint8_t { None, Partial, Empty };

// The slab descriptor. Fields marked "lock" are guarded by cache->lock (the annotation cannot
// name another object's member: kmem_cache.hpp's `*_locked` functions REQUIRE that lock).
struct alignas(16) Slab {
  KmemCache* cache;        // immutable while the slab lives; lockless readers may load it
  std::uint32_t freelist;  // lock: encoded (offset + 1) of the first free slot, 0 = none
  std::uint16_t inuse;     // lock: slots handed out (users, magazines, SLAB-SELF)
  std::uint16_t objects;   // immutable: slots in the slab
  std::uint32_t pfn;       // immutable: first page
  std::uint32_t next;      // lock: list link (pfn of the next slab, kNil)
  std::uint32_t prev;      // lock: list link
  std::uint16_t bump;      // lock: first never-used slot; slots >= bump were never handed out
  std::uint8_t order;      // immutable
  SlabList list;           // lock
};
static_assert(sizeof(Slab) == 32 && alignof(Slab) == 16, "MEMDESC-TAG: 16-byte aligned descriptors");
// Free descriptors in the descriptor cache keep their freelist link where `next` is, never
// over `cache`, which lockless readers load.
inline constexpr std::uint32_t kSlabFreeptrOffset = offsetof(Slab, next);
static_assert(kSlabFreeptrOffset >= offsetof(Slab, cache) + sizeof(KmemCache*),
              "a free descriptor's link must not overlay the field lockless readers load");

// Per-process secret for freelist links: random, set once by init_link_secret() before any
// cache exists, read-only afterwards.
inline std::uint64_t g_link_secret = 0;
inline std::uint64_t g_mark_secret = 0;  // SLAB-FREE-MARK's own key: a mark read after free reveals nothing of the links'
void init_link_secret();  // both secrets; idempotent, thread-safe

// A free slot's link to the next free slot (offset + 1 within the slab, 0 = end) is stored
// obfuscated with the process secret and the slot's own address, so a leaked or overwritten
// link is useless to an attacker and a stray write is caught when the link is decoded.
inline std::uint32_t link_key(const void* slot) {
  return static_cast<std::uint32_t>(g_link_secret >> 32) ^
         static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(slot) >> 3);
}

// A free slot is poisoned in ASan builds: the allocator's own accesses to its link are not
// checked (base/asan.hpp).
MEMDESC_NO_ASAN inline std::uint32_t load_link(const void* slot, std::uint32_t freeptr_off) {
  std::uint32_t raw;
  __builtin_memcpy(&raw, static_cast<const char*>(slot) + freeptr_off, 4);
  return raw ^ link_key(slot);
}

MEMDESC_NO_ASAN inline void store_link(void* slot, std::uint32_t freeptr_off, std::uint32_t next) {
  std::uint32_t raw = next ^ link_key(slot);
  __builtin_memcpy(static_cast<char*>(slot) + freeptr_off, &raw, 4);
}

// SLAB-FREE-MARK (hardened builds): bytes 4-7 of a free object of a marked cache hold a mark
// keyed by a process secret of its own and the object's address; allocation clears it. A free
// that finds the mark is a double free. (Bytes 0-3 keep the freelist link; caches whose objects
// keep their contents when free — typesafe by RCU, or with a constructor — and caches whose link
// a creator put over bytes 4-7 are not marked.)
inline constexpr std::uint32_t kFreeMarkOff = 4;
inline std::uint32_t free_mark(const void* slot) {
  return static_cast<std::uint32_t>(g_mark_secret) ^ static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(slot) >> 3);
}
MEMDESC_NO_ASAN inline bool has_free_mark(const void* slot) {
  std::uint32_t v;
  __builtin_memcpy(&v, static_cast<const char*>(slot) + kFreeMarkOff, 4);
  return v == free_mark(slot);
}
MEMDESC_NO_ASAN inline void set_free_mark(void* slot) {
  std::uint32_t v = free_mark(slot);
  __builtin_memcpy(static_cast<char*>(slot) + kFreeMarkOff, &v, 4);
}
MEMDESC_NO_ASAN inline void clear_free_mark(void* slot) {
  std::uint32_t v = 0;
  __builtin_memcpy(static_cast<char*>(slot) + kFreeMarkOff, &v, 4);
}

}  // namespace memdesc::slab

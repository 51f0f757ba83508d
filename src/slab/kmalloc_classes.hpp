// slab/kmalloc_classes.hpp — the kmalloc size classes and the cache-id space, in one table.
//
// Cache ids are what a slab page's word carries in aux (13 bits, so at most kMaxCaches), and
// what the fast paths index their per-thread magazines and FastInfo by:
//   id 0                          the slab descriptor cache (SLAB-SELF)
//   ids 1 .. kKmallocClasses      the kmalloc classes, in size order (kKmallocClassTable)
//   ids kFirstUserCacheId ..      caches made by kmem_cache_create (the folio layer's two
//                                 descriptor caches come first, then users')
//   id kDeadCacheId (the last)    never a live cache: a destroyed cache's shell carries it, so
//                                 its magazine pair is always empty and every use of it
//                                 reaches a slow path, which reports it
// kmalloc_index(size) maps a request of 1..kKmallocMaxCacheSize bytes to its class's id with
// one table load (sizes up to 192) or one fls; the static_asserts below check it against the
// table for every size.
#pragma once
#include <memdesc/slab.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace memdesc::slab {

inline constexpr unsigned kMaxCaches = 1024;  // ids fit the word's 13 aux bits
inline constexpr unsigned kDescriptorCacheId = 0;
inline constexpr unsigned kDeadCacheId = kMaxCaches - 1;
// A slab word's aux is its cache's id, with this bit set for an internal cache (the memdesc
// descriptor caches and zsmalloc's handle caches, which a layer owns and no user may reach):
// kfree and ksize refuse those objects with no extra load [SLAB-INTERNAL]. Ids use the low 10
// bits, so a kfree-able word has aux < kMaxCaches.
inline constexpr unsigned kInternalAux = 1u << 12;
static_assert(kInternalAux >= kMaxCaches && kInternalAux < (1u << 13), "the bit lies above every id, inside aux");
inline constexpr unsigned cache_id_of_aux(unsigned aux) { return aux & (kMaxCaches - 1); }

struct KmallocClass {
  std::uint32_t size;  // object size of the class
  const char* name;    // its cache's name (slabinfo)
};

inline constexpr KmallocClass kKmallocClassTable[] = {
    {8, "kmalloc-8"},     {16, "kmalloc-16"},   {32, "kmalloc-32"}, {64, "kmalloc-64"}, {96, "kmalloc-96"},
    {128, "kmalloc-128"}, {192, "kmalloc-192"}, {256, "kmalloc-256"}, {512, "kmalloc-512"}, {1024, "kmalloc-1k"},
    {2048, "kmalloc-2k"}, {4096, "kmalloc-4k"}, {8192, "kmalloc-8k"},
};
inline constexpr unsigned kKmallocClasses = std::size(kKmallocClassTable);
inline constexpr unsigned kFirstKmallocId = kDescriptorCacheId + 1;
inline constexpr unsigned kFirstUserCacheId = kFirstKmallocId + kKmallocClasses;

constexpr unsigned kmalloc_class_id(unsigned class_index) { return kFirstKmallocId + class_index; }

namespace detail {
inline constexpr unsigned kSmallMax = 192;  // sizes up to here go through the table; above, fls
// (size - 1) / 8 -> id of the smallest class that holds size, for size in 1..kSmallMax.
constexpr std::array<std::uint8_t, kSmallMax / 8> make_small_index() {
  std::array<std::uint8_t, kSmallMax / 8> t{};
  for (unsigned i = 0; i < t.size(); ++i) {
    unsigned size = (i + 1) * 8, c = 0;
    while (kKmallocClassTable[c].size < size) ++c;
    t[i] = static_cast<std::uint8_t>(kmalloc_class_id(c));
  }
  return t;
}

inline constexpr auto kSmallIndex = make_small_index();
}  // namespace detail

inline constexpr unsigned kFirstPow2Class = 7;  // kKmallocClassTable[7] is 256 = 2^8; every class after it doubles

// size in [1, kKmallocMaxCacheSize]: the id of the class's cache. Above kSmallMax the classes
// are powers of two, so fls(size - 1) (= 8 for 193..256) counts up from kFirstPow2Class.
constexpr unsigned kmalloc_index(std::size_t size) {
  return size <= detail::kSmallMax
             ? detail::kSmallIndex[(size - 1) / 8]
             : kmalloc_class_id(kFirstPow2Class) + (64u - static_cast<unsigned>(__builtin_clzll(size - 1))) - 8;
}

namespace detail {
// The round trip the fast path relies on: every size maps to the smallest class that holds it.
constexpr bool kmalloc_index_matches_table() {
  for (std::size_t size = 1; size <= kKmallocMaxCacheSize; ++size) {
    unsigned id = kmalloc_index(size);
    if (id < kFirstKmallocId || id >= kFirstUserCacheId) return false;
    unsigned c = id - kFirstKmallocId;
    if (kKmallocClassTable[c].size < size) return false;              // holds it
    if (c > 0 && kKmallocClassTable[c - 1].size >= size) return false;  // the smallest that does
  }
  return true;
}
}  // namespace detail
static_assert(kKmallocClassTable[kKmallocClasses - 1].size == kKmallocMaxCacheSize,
              "the last class is the largest kmalloc size a slab serves");
static_assert(kKmallocClassTable[kFirstPow2Class - 1].size == detail::kSmallMax &&
                  kKmallocClassTable[kFirstPow2Class].size == 256,
              "the table serves sizes up to kSmallMax; powers of two from 256 up");
static_assert(detail::kmalloc_index_matches_table(), "kmalloc_index and kKmallocClassTable disagree");
static_assert(kmalloc_index(100) == kmalloc_class_id(5) && kmalloc_index(8192) == kFirstUserCacheId - 1);
static_assert(kFirstUserCacheId == 14 && kMaxCaches <= (1u << 13));

}  // namespace memdesc::slab

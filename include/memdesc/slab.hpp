// memdesc/slab.hpp — object caches and kmalloc on memdescs. Layer: slab (its public face).
//
// A KmemCache hands out objects of one size carved from slabs: naturally aligned blocks of
// 2^order pages whose every page word is Slab(descriptor, order, aux = the cache's id), so
// kfree finds the cache from the page word alone. Caches are created and used through
// memdesc::Arena (arena.hpp).
#pragma once
#include <memdesc/flags.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace memdesc {

namespace slab { class KmemCache; }
using KmemCache = slab::KmemCache;  // opaque to users

// Cache flags: a type of their own (memdesc/flags.hpp), not an unsigned.
struct SlabFlagsTag;
using SlabFlags = FlagSet<SlabFlagsTag>;

inline constexpr SlabFlags SLAB_NONE{};
// Slab pages go back to the buddy only after an RCU grace period: a reader under rcu never sees
// the memory leave the cache (objects may be reused at once).
inline constexpr SlabFlags SLAB_TYPESAFE_BY_RCU{1u << 0};
inline constexpr SlabFlags SLAB_HWCACHE_ALIGN{1u << 1};  // align objects to 64-byte cache lines
inline constexpr SlabFlags SLAB_POISON{1u << 2};         // checked builds: fill freed objects, verify on allocation
inline constexpr SlabFlags SLAB_RED_ZONE{1u << 3};       // checked builds: guard bytes after each object, verified on free

// kmalloc(0) returns this: not null, not dereferenceable; kfree and ksize accept it.
inline void* const kZeroSizePtr = reinterpret_cast<void*>(16);
inline constexpr std::size_t kKmallocMaxCacheSize = 8192;  // larger requests go to the buddy

struct SlabCacheInfo {        // one line of `memdesc slabinfo`
  std::string name;
  std::uint32_t id = 0;
  std::uint64_t active_objs = 0;   // handed out (to users or to per-thread magazines)
  std::uint64_t num_objs = 0;      // slots in all slabs
  std::uint32_t object_size = 0;   // what the user asked for
  std::uint32_t stride = 0;        // bytes per slot
  std::uint32_t objs_per_slab = 0;
  std::uint32_t pages_per_slab = 0;
  std::uint64_t slabs = 0, partial_slabs = 0, empty_slabs = 0;
  std::uint64_t descriptor_bytes = 0;  // slabs * sizeof(slab descriptor)
  std::uint32_t limit = 0;      // objects a per-thread magazine stack holds now; grows under contention
  std::uint32_t max_limit = 0;  // ... up to this many
  SlabFlags flags;
};

}  // namespace memdesc

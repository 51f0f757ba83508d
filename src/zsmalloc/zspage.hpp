// zsmalloc/zspage.hpp — the zspage descriptor and the size class: the data structures of
// zsmalloc/zs_pool.hpp's geometry, slots and locking, and the page words that name them.
#pragma once
#include <memdesc/word.hpp>
#include <memdesc/zsmalloc.hpp>

#include <atomic>
#include <cstdint>

#include "base/base.hpp"

namespace memdesc::zsmalloc {

class Pool;
struct SizeClass;

inline constexpr std::uint16_t kEnd = 0xFFFF;  // "no slot" in free lists
inline constexpr std::uint64_t kAllocatedTag = 1;

enum class ZspageState : std::uint8_t { Building, Live, Dead };

struct alignas(16) Zspage {
  std::atomic<Pool*> pool;            // set when built; lockless readers compare it (isolate)
  std::atomic<std::int32_t> lock;     // ZS-LOCK: n > 0 readers, -1 a writer, 0 free
  std::uint32_t free_link;            // the slab's freelist link while the descriptor is free
  std::atomic<SizeClass*> cls;        // set when built, immutable while live
  Zspage* next;                       // class lock: fullness list
  Zspage* prev;                       // class lock
  std::atomic<ZsHandle> huge_handle;  // class lock: the huge object's handle, 0 when free
  std::uint16_t inuse;                // class lock: allocated objects
  std::uint16_t freeobj;              // class lock: first free slot, kEnd when full
  std::uint16_t isolated;             // class lock: bit k = page k isolated for migration
  std::uint8_t fullness;              // class lock: its fullness group
  std::uint8_t nr_pages;              // immutable while live
  std::atomic<ZspageState> state;     // class lock (atomic: stale RCU lookups read it)
  std::uint32_t pfn[kZsMaxChain];     // the chain; pfn[k] changes under pool write + class + zspage write locks
};
static_assert(sizeof(Zspage) == 128, "a zspage descriptor costs 128 bytes");

struct SizeClass {
  mutable SpinLock lock{LockRank::ZsClass};
  // Immutable.
  Pool* pool = nullptr;
  std::uint32_t size = 0, objs = 0, pages = 0, index = 0, first_index = 0;
  bool huge = false;
  // Guarded by lock.
  Zspage* lists[kZsFullnessGroups] GUARDED_BY(lock) = {};
  std::uint64_t nr_group[kZsFullnessGroups] GUARDED_BY(lock) = {};
  std::uint64_t zspages GUARDED_BY(lock) = 0, objs_inuse GUARDED_BY(lock) = 0;
  std::uint32_t header() const { return huge ? 0 : kZsHeaderSize; }
  // Pages compaction could free: whole zspages' worth of free slots (lock held).
  std::uint64_t freeable_pages() const REQUIRES(lock) { return (zspages * objs - objs_inuse) / objs * pages; }
};

// The word of page `pos` of a zspage's chain (ZS-WORD).
inline MemdescWord zs_word(const Zspage* zs, unsigned pos) { return MemdescWord::describe(MemdescType::ZPDesc, zs, 0, pos); }
// The word a page holds between leaving a zspage and reaching the buddy (migration): a Misc
// subtype no user's free call accepts, so neither a lookup nor a stray free_pages takes it.
inline MemdescWord migrating_word() { return MemdescWord::misc(MiscSubtype::Migrating, 0); }

// First slot that starts in page `pos` of a chain of `size`-byte slots.
inline std::uint32_t first_index_in_page(std::uint32_t size, std::uint32_t pos) {
  return static_cast<std::uint32_t>((std::uint64_t{pos} * kPageSize + size - 1) / size);
}

}  // namespace memdesc::zsmalloc

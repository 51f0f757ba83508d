// page/buddy.hpp — one zone's buddy allocator: free blocks of orders 0..max_order.
//
// Free-page state fits the one-word budget and never touches free memory:
//   * below the largest order, one hierarchical bitmap per order over *pairs*: bit j of order k
//     is set exactly when one of the two order-k blocks at zone pfn j << (k+1) is free and not
//     part of a larger free block [BUDDY-PAIR] (both cannot be: they would have merged). Which
//     half is free, the first page's word says: Buddy(head, order k). At the largest order,
//     where blocks have no buddy, one bit per block [BUDDY-BITMAP]. find_first gives the lowest
//     free block: address-ordered first fit.
//   * the first page's word of a free block is Buddy(head, order, dirty flag) (at the largest
//     order it may be the plain Buddy word, e.g. 0 in a never-touched arena); every other page
//     of it holds 0 [BUDDY-WORD]. "dirty" = the block may hold resident memory; a clean block
//     reads as zero (never touched, or purged) and needs no zeroing. A block that leaves the
//     buddy (allocated, cached by a thread, isolated) loses the head bit at once.
// No allocation on the free path, no list links in free pages, about 1 bit per page in bitmaps
// plus 1/64 of that in summaries. docs/MEMDESC.md says why this representation was chosen.
//
// Invariants (validate_locked checks them; docs/INVARIANTS.md lists them):
//   BUDDY-ALIGN   a free block of order k starts at a pfn that is a multiple of 2^k.
//   BUDDY-MERGED  no two free buddies of the same order below max_order: they would have merged.
//   BUDDY-COUNT   nr_free[k] == free blocks of order k; free_pages == sum nr_free[k] << k.
//   BUDDY-WORD    as above; and a free block's pages are not covered by another free block.
//
// Locking: every member function with the _locked suffix needs lock (rank Zone); the lock guards
// the bitmaps, the counters and the words of free blocks.
#pragma once
#include <cstdint>

#include "base/base.hpp"
#include "core/core.hpp"

namespace memdesc::page {

inline constexpr std::uint64_t kNoPfn = ~std::uint64_t{0};

struct Block {
  std::uint64_t pfn = kNoPfn;
  bool dirty = false;  // may hold resident memory (clean blocks read as zero)
};

class BuddyZone {
 public:
  BuddyZone() = default;
  BuddyZone(const BuddyZone&) = delete;
  BuddyZone& operator=(const BuddyZone&) = delete;

  // Words of bitmap storage the zone `id` of `mm` needs (zero if the zone is empty).
  static std::size_t bitmap_words(const core::Memmap& mm, core::ZoneId id);
  // `storage`: bitmap_words() zero words that outlive the zone (the page allocator reserves one
  // block for every zone, so only the last page is rounded up).
  // Before the zone is shared: no lock.
  void init(core::Memmap& mm, core::ZoneId id, std::uint64_t* storage) NO_THREAD_SAFETY_ANALYSIS;

  // Removes the lowest free block of exactly `order`, splitting a larger one if needed.
  // Returns {kNoPfn} when the zone has no block of order >= `order`. Does not write the
  // allocated block's words: the caller owns them from here.
  Block alloc_locked(unsigned order) REQUIRES(lock);
  // Inserts a block whose words the caller has NOT yet reset; merges with free buddies.
  // Writes the words of the block to Buddy (BUDDY-WORD).
  void free_locked(std::uint64_t pfn, unsigned order, bool dirty) REQUIRES(lock);
  // Inserts a block whose words are all already Buddy (pages from a per-thread cache).
  void insert_locked(std::uint64_t pfn, unsigned order, bool dirty) REQUIRES(lock);
  // Takes the free block of `order` at `pfn` out of the free state (purge isolates blocks so).
  void isolate_locked(std::uint64_t pfn, unsigned order) REQUIRES(lock);

  // Page pfn lies in a free block of any order (fork's reclaim of a dead thread's cache uses it
  // to refuse a block that is in the buddy already). O(max_order).
  bool covers_free_locked(std::uint64_t pfn) const REQUIRES(lock);

  // The first free block of exactly `order` starting at or after `from_pfn`, or kNoPfn.
  std::uint64_t next_free_locked(unsigned order, std::uint64_t from_pfn) const REQUIRES(lock);

  void validate_locked() const REQUIRES(lock);  // fatal report on violation; O(zone pages)

  std::uint64_t nr_free_locked(unsigned order) const REQUIRES(lock) { return nr_free_[order]; }
  std::uint64_t free_pages_locked() const REQUIRES(lock) { return free_pages_; }
  std::uint64_t start_pfn() const { return start_; }
  std::uint64_t pages() const { return pages_; }
  core::ZoneId id() const { return id_; }

  mutable SpinLock lock{LockRank::Zone};

 private:
  friend struct BuddyZoneTestAccess;  // corruption tests damage the counters on purpose
  core::Memmap* mm_ = nullptr;
  core::ZoneId id_ = core::ZoneId::Normal;
  std::uint64_t start_ = 0, pages_ = 0;
  unsigned max_order_ = 0;
  bool is_free_head(std::uint64_t pfn, unsigned order) const REQUIRES(lock);  // BUDDY-PAIR: which half
  std::uint64_t bit_of(std::uint64_t pfn, unsigned order) const {  // pair index, or block index at max
    return (pfn - start_) >> (order == max_order_ ? order : order + 1);
  }
  // The free block of `order` a set bit stands for.
  std::uint64_t block_of(std::uint64_t bit, unsigned order) const REQUIRES(lock);
  void set_head(std::uint64_t pfn, unsigned order, bool dirty) const REQUIRES(lock);

  core::HierBitmap free_[MemdescWord::kMaxOrder + 1] GUARDED_BY(lock);  // pairs below max_order, blocks at it
  std::uint64_t nr_free_[MemdescWord::kMaxOrder + 1] GUARDED_BY(lock) = {};
  std::uint64_t free_pages_ GUARDED_BY(lock) = 0;
};

}  // namespace memdesc::page

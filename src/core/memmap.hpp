// core/memmap.hpp — the arena's memory and its page-word array (the "memmap").
//
// Owns: one reserved, committed, max-block-aligned range of "physical" pages (the arena, or an
// arena's metadata region: META-OOB) between two inaccessible gaps of one largest block
// [ARENA-GUARD], and an array of exactly one 8-byte memdesc word per page kept OUTSIDE the
// range [MEMDESC-SIZE].
// pfn n is the page at base + n * 4 KiB; pfn 0 is aligned to the largest buddy block
// [ARENA-ALIGN], so buddy arithmetic (pfn ^ (1 << order)) needs no offset.
// Zones: NORMAL = [0, movable_start), MOVABLE = [movable_start, pages); both boundaries are
// multiples of the largest block [ZONE-ALIGN], so no buddy pair straddles a zone.
// Does not own: free-page state (page/buddy), descriptors (their layers).
//
// Fields are written once in create() and read-only afterwards, except the words (atomics,
// see word_slot) and the metadata counters (atomics).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memdesc/word.hpp>

#include "base/base.hpp"
#include <memdesc/result.hpp>

namespace memdesc::core {

enum class ZoneId : std::uint8_t { Normal = 0, Movable = 1 };
inline constexpr unsigned kNrZones = 2;
const char* zone_name(ZoneId z);

// Bytes of metadata by kind; every layer adds what it allocates. All-in bytes per page is
// total() / pages.
struct MetadataCounters {
  std::atomic<std::uint64_t> words{0};        // the page-word array
  std::atomic<std::uint64_t> free_state{0};   // buddy bitmaps
  std::atomic<std::uint64_t> caches{0};       // per-thread page caches
  std::atomic<std::uint64_t> descriptors{0};  // descriptor memory (slab, folio, ...)
  std::uint64_t total() const {
    return words.load(std::memory_order_relaxed) + free_state.load(std::memory_order_relaxed) +
           caches.load(std::memory_order_relaxed) + descriptors.load(std::memory_order_relaxed);
  }
};

// What the allocators' fast paths need of the memmap, copied by value into each of them so that a
// lookup costs no load of the Memmap: one subtraction and compare for "inside the arena", one
// shift and load for the word. Immutable for the arena's life.
struct ArenaView {
  std::uint64_t id = 0;  // Memmap::id()
  std::uintptr_t base = 0;
  std::size_t bytes = 0;
  std::atomic<std::uint64_t>* words = nullptr;

  // p's offset in the arena; >= bytes (one unsigned compare) when p is outside it or null.
  std::uint64_t offset(const void* p) const { return reinterpret_cast<std::uintptr_t>(p) - base; }
  // The word of the page at arena offset `off` (< bytes). Relaxed by default: fast paths whose
  // caller owns the block, so no descriptor is being published to them; acquire for a reader
  // that will follow the word to a descriptor another thread may have just published.
  MemdescWord word_at(std::uint64_t off, std::memory_order mo = std::memory_order_relaxed) const {
    return MemdescWord::from_raw(words[off >> kPageShift].load(mo));
  }
  std::uint64_t raw_word_at(std::uint64_t off) const { return words[off >> kPageShift].load(std::memory_order_relaxed); }
  // Writes w into n words from pfn, with release order: publishes whatever w points at.
  void set_words(std::uint64_t pfn, std::uint64_t n, MemdescWord w) const {
    for (std::uint64_t i = 0; i < n; ++i) words[pfn + i].store(w.raw(), std::memory_order_release);
  }
};

class Memmap {
 public:
  // Largest arena: pfns fit 32 bits (per-thread caches store them so) = 16 TiB.
  static constexpr std::uint64_t kMaxPages = std::uint64_t{1} << 32;

  static Result<std::unique_ptr<Memmap>> create(std::size_t bytes, unsigned max_order, std::size_t movable_bytes);
  ~Memmap();
  Memmap(const Memmap&) = delete;
  Memmap& operator=(const Memmap&) = delete;

  std::uintptr_t base() const { return base_; }
  std::size_t bytes() const { return bytes_; }
  std::uint64_t pages() const { return pages_; }
  unsigned max_order() const { return max_order_; }
  std::uint64_t id() const { return id_; }  // unique in the process, never reused
  ArenaView view() const { return {id_, base_, bytes_, words_}; }

  bool contains(const void* p) const { return reinterpret_cast<std::uintptr_t>(p) - base_ < bytes_; }
  std::uint64_t pfn(const void* p) const { return (reinterpret_cast<std::uintptr_t>(p) - base_) >> kPageShift; }
  void* addr(std::uint64_t pfn) const { return reinterpret_cast<void*>(base_ + (pfn << kPageShift)); }

  // The word of page `pfn`. Writers store with release (publishing a descriptor built before),
  // lockless readers load with acquire; see docs/LOCKING.md for who may write which word.
  std::atomic<std::uint64_t>& word_slot(std::uint64_t pfn) const { return words_[pfn]; }
  MemdescWord word(std::uint64_t pfn) const { return MemdescWord::from_raw(words_[pfn].load(std::memory_order_acquire)); }
  void set_word(std::uint64_t pfn, MemdescWord w) const { words_[pfn].store(w.raw(), std::memory_order_release); }
  void set_words(std::uint64_t pfn, std::uint64_t n, MemdescWord w) const { view().set_words(pfn, n, w); }

  // Invariant `id` (FOLIO-SAME, FRAG-SAME, ...): pages pfn+1 .. pfn+n-1 hold the same word as
  // the first, w. Fatal report naming the first page that does not (`what`: "folio", "block").
  void check_block_words(const char* id, const char* what, std::uint64_t pfn, std::uint64_t n, MemdescWord w) const;

  // The one walk over the arena the validators share: for every page whose word `accept(w)`
  // takes, visit(pfn, w) checks the block that starts there and returns its page count (>= 1);
  // the walk resumes after it. Other pages are stepped over one by one. Call when quiescent.
  template <class Accept, class Visit>
  void for_each_block(Accept&& accept, Visit&& visit) const {
    for (std::uint64_t pfn = 0; pfn < pages_;) {
      MemdescWord w = word(pfn);
      pfn += accept(w) ? visit(pfn, w) : 1;
    }
  }

  ZoneId zone_of(std::uint64_t pfn) const { return pfn >= movable_start_ ? ZoneId::Movable : ZoneId::Normal; }
  std::uint64_t zone_start(ZoneId z) const { return z == ZoneId::Normal ? 0 : movable_start_; }
  std::uint64_t zone_pages(ZoneId z) const { return z == ZoneId::Normal ? movable_start_ : pages_ - movable_start_; }

  // ASan builds: which 2 MiB regions of the arena may hold poison — poisoned whole at creation,
  // or handed out since (only what was handed out is freed, or poisoned in part by its owner) —
  // so that teardown unpoisons only those (ASan clears shadow with memset, and a 1 TiB arena's
  // shadow is 128 GiB).
  void note_poisoned(std::uint64_t off, std::uint64_t len) {
    if (!asan_regions_) return;
    for (std::uint64_t r = off >> kAsanRegionShift; r <= (off + len - 1) >> kAsanRegionShift; ++r)
      asan_regions_[r / 64].fetch_or(std::uint64_t{1} << (r % 64), std::memory_order_relaxed);
  }

  MetadataCounters& metadata() { return meta_; }
  const MetadataCounters& metadata() const { return meta_; }
  std::size_t word_array_resident_bytes() const;

 private:
  Memmap() = default;

  std::uintptr_t base_ = 0;
  std::size_t bytes_ = 0;
  std::size_t guard_bytes_ = 0;  // the inaccessible gap on each side (ARENA-GUARD)
  std::uint64_t pages_ = 0;
  std::uint64_t movable_start_ = 0;
  unsigned max_order_ = 0;
  std::uint64_t id_ = 0;
  std::atomic<std::uint64_t>* words_ = nullptr;
  std::size_t words_bytes_ = 0;
  MetadataCounters meta_;
  static constexpr unsigned kAsanRegionShift = 21;
  std::unique_ptr<std::atomic<std::uint64_t>[]> asan_regions_;  // ASan builds only
};

}  // namespace memdesc::core

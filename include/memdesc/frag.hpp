// memdesc/frag.hpp — the page fragment cache: small buffers carved from 32 KiB blocks. Layer: frag.
//
// A PageFragCache bump-allocates fragments from its current block: an order-3 block (32 KiB),
// or an order-0 page when no order-3 block can be had. The block's descriptor holds a
// reference count; the cache takes kFragBias references at once when it gets a block and
// hands one to each fragment by decrementing its private `bias_` (pagecnt_bias), so
// allocation touches no shared atomic. Arena::page_frag_free(addr) drops one reference from
// any thread, lock-free, by address: address → page word → descriptor. When the block is
// used up, the cache gives back its unused references: if no fragment is outstanding the
// block is reused in place, otherwise the last free of a fragment frees it.
//
//   PageFragCache nc = arena.page_frag_cache();   // one per user; not thread-safe itself
//   void* p = nc.alloc(2048);                    // or alloc_align(size, align)
//   arena.page_frag_free(p);                     // any thread
//
// A cache must be drained or destroyed before its arena (its destructor drains it). A
// moved-from cache is empty and takes a fresh block on its next allocation.
//
// Block descriptor (docs/FRAG.md says why): FragBlock::Frag — a 16-byte page_frag descriptor,
// word Frag(desc, order); FragBlock::Folio — an order-3 folio (the 2023 multipage-folio
// proposal), word Anon(folio, order). Both free through page_frag_free.
#pragma once
#include <cstddef>
#include <cstdint>

namespace memdesc {

namespace frag { class FragAllocator; }

enum class FragBlock : std::uint8_t { Frag, Folio };

inline constexpr unsigned kFragMaxOrder = 3;                      // 32 KiB blocks
inline constexpr std::size_t kFragMaxSize = std::size_t{4096} << kFragMaxOrder;
inline constexpr std::int32_t kFragBias = static_cast<std::int32_t>(kFragMaxSize) + 1;  // > fragments per block

class PageFragCache {
 public:
  PageFragCache() = default;  // empty: allocations fail until one is assigned from an arena
  PageFragCache(PageFragCache&& o) noexcept { take(o); }
  PageFragCache& operator=(PageFragCache&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }
  PageFragCache(const PageFragCache&) = delete;
  PageFragCache& operator=(const PageFragCache&) = delete;
  ~PageFragCache() { release(); }  // the arena must still exist (its destructor checks)

  // A fragment of `size` bytes (1 .. kFragMaxSize), aligned to `align` (a power of two). Null
  // and last_error() when out of memory, or for a size no block holds (the cache is intact).
  // Fast path: an add, a mask, two compares, a decrement and a store, on this object only; no
  // atomic, no lock (a fragment and its page_frag_free: ~6-7 ns, bench/micro_pages BM_FragPair).
  void* alloc(std::size_t size) { return alloc_align(size, 1); }
  void* alloc_align(std::size_t size, std::size_t align) {
    std::size_t off = (std::size_t{offset_} + align - 1) & ~(align - 1);
    // 1 <= size <= room, align a power of two (0 is not: the slow path reports it, whatever the
    // cache holds). A constant align folds the last two tests away.
    if (__builtin_expect(off < fast_limit_ && size - 1 < fast_limit_ - off && (align & (align - 1)) == 0 && align != 0, 1)) {
      --bias_;  // FRAG-BIAS: one reference to the caller
      offset_ = static_cast<std::uint32_t>(off + size);
      return reinterpret_cast<void*>(va_ + off);
    }
    return alloc_slow(size, align);
  }

  // Gives back the current block's unused references (frees it if no fragment is out).
  void drain();

  std::size_t block_bytes() const { return size_; }  // the current block's size, 0 if none
  FragBlock block_kind() const { return kind_; }

 private:
  friend class frag::FragAllocator;
  void* alloc_slow(std::size_t size, std::size_t align);
  void release();  // drain, then leave the arena (which counts its live caches)
  void take(PageFragCache& o) {
    va_ = o.va_, offset_ = o.offset_, size_ = o.size_, fast_limit_ = o.fast_limit_, bias_ = o.bias_;
    desc_ = o.desc_, owner_ = o.owner_, kind_ = o.kind_;
    o.va_ = 0, o.offset_ = o.size_ = o.fast_limit_ = 0, o.bias_ = 0, o.desc_ = nullptr, o.owner_ = nullptr;
  }

  std::uintptr_t va_ = 0;      // the current block, 0 = none
  std::uint32_t offset_ = 0;   // next free byte (fragments go upward)
  std::uint32_t size_ = 0;     // bytes in the block (0 = none)
  // What the fast path may carve up to: size_, or 0 in checked builds of the library, whose
  // slow path records every fragment (a double page_frag_free is then reported).
  std::uint32_t fast_limit_ = 0;
  std::int32_t bias_ = 0;      // references the cache still owns (FRAG-BIAS)
  void* desc_ = nullptr;       // the block's descriptor (PageFrag or Folio)
  frag::FragAllocator* owner_ = nullptr;
  FragBlock kind_ = FragBlock::Frag;
};

}  // namespace memdesc

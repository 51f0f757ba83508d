// memdesc/arena.hpp — an arena: a range of "physical" pages, one memdesc word per page, and the
// page allocator on top. Layer: api.
//
//   auto a = memdesc::Arena::create({.size = 1ull << 30});
//   if (!a.ok()) { puts(describe(a.error()).c_str()); return 1; }
//   void* p = a.value()->alloc_pages(2);          // 4 pages, word Misc(pages, order=2)
//   a.value()->free_pages(p);                     // no order needed: the word knows it
//
// Thread-safe: any thread may allocate and free, including blocks other threads allocated.
// Misuse (double free, foreign pointer, pointer inside a block, wrong word) is a fatal report
// with a precise message; running out of memory returns null and sets last_error().
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memdesc/constants.hpp>
#include <memdesc/folio.hpp>
#include <memdesc/frag.hpp>
#include <memdesc/gfp.hpp>
#include <memdesc/slab.hpp>
#include <memdesc/word.hpp>
#include <memdesc/zsmalloc.hpp>
#include <memory>
#include <optional>
#include <vector>

#include <memdesc/result.hpp>

namespace memdesc {
namespace core { class Memmap; }
namespace page { class PageAllocator; }
namespace slab { class SlabAllocator; }
namespace folio { class FolioAllocator; }
namespace frag { class FragAllocator; }

struct ArenaConfig {
  std::size_t size = std::size_t{1} << 30;  // bytes; rounded up to the largest block
  unsigned max_order = 10;                  // largest block: 2^max_order pages (0..15)
  unsigned movable_percent = 25;            // share of the arena in the MOVABLE zone (rounded down to blocks)
  unsigned pcp_high = 64;                   // per-thread cache: order-0 blocks held before draining (initially)
  unsigned pcp_batch = 32;                  // per-thread cache: blocks moved per refill / drain
  unsigned pcp_high_max = 2048;             // per-thread cache: the most `high` grows to for a bursty thread
  bool thread_cache = true;                 // per-thread page caches on/off
  // The metadata region, where every descriptor and handle lives (docs/ARCHITECTURE.md, "Where
  // descriptors live"): its size in bytes, rounded up to 4 MiB (at least 4 MiB); 0 sizes it for
  // the densest descriptors the layers make, with room to spare. Address space only.
  std::size_t metadata_bytes = 0;
};

struct MetadataBytes {
  std::uint64_t words = 0, free_state = 0, caches = 0, descriptors = 0, total = 0;
};

struct ZoneInfo {
  const char* name = "";
  std::uint64_t start_pfn = 0, pages = 0, free_pages = 0;
  std::uint64_t nr_free[MemdescWord::kMaxOrder + 1] = {};  // free blocks per order
};

struct ArenaInfo {
  std::size_t arena_bytes = 0;
  std::uint64_t pages = 0;
  unsigned max_order = 0;
  MetadataBytes metadata;
  double bytes_per_page = 0;       // metadata.total / pages
  double init_seconds = 0;         // time create() took
  std::size_t rss_bytes = 0;       // resident set of the process
  std::size_t word_array_resident_bytes = 0;
  std::uint64_t free_pages = 0;    // in the buddy
  std::uint64_t cached_pages = 0;  // in per-thread caches (free, not yet returned to the buddy)
  std::uint64_t folios = 0;        // live folio descriptors (order 0 and large)
  std::uint64_t folio_descriptor_bytes = 0;  // their bytes (64 per order-0 folio, 96 per large one)
  std::uint64_t frag_blocks = 0;   // live page_frag descriptors
  // The metadata region (docs/ARCHITECTURE.md, "Where descriptors live"): address space
  // reserved for descriptors and handles, apart from the arena; resident where they are.
  std::size_t metadata_region_bytes = 0;
  std::uint64_t metadata_region_free_pages = 0;
  ZoneInfo zones[2];
};

class Arena {
 public:
  static Result<std::unique_ptr<Arena>> create(const ArenaConfig& cfg = {});
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Pages. alloc_pages writes Misc(pages, order) into every page word; alloc_pages_desc writes
  // `word`, whose order must equal `order` (a descriptor's owner allocates so). Null on failure.
  void* alloc_pages(unsigned order, Gfp gfp = GFP_NONE);
  void* alloc_pages_desc(unsigned order, MemdescWord word, Gfp gfp = GFP_NONE);
  void free_pages(void* addr);                      // a block from alloc_pages
  void free_pages_desc(void* addr, MemdescWord word);  // a block whose word must equal `word`

  // Lookups. Every page of a block answers with the block's word.
  bool contains(const void* p) const;
  std::uint64_t pfn_of(const void* p) const;  // p must be inside the arena
  void* pfn_to_virt(std::uint64_t pfn) const;
  std::optional<MemdescWord> virt_to_memdesc(const void* p) const;  // nullopt outside the arena
  MemdescWord pfn_to_memdesc(std::uint64_t pfn) const;

  // kmalloc family. Sizes up to 8 KiB come from the kmalloc caches (8 ... 8192, plus 96 and
  // 192); larger ones are Misc(kmalloc_large) blocks from the buddy. kfree dispatches on the
  // page word. kmalloc(0) returns kZeroSizePtr. Null (and last_error()) when out of memory.
  void* kmalloc(std::size_t size, Gfp gfp = GFP_NONE);
  void* kzalloc(std::size_t size, Gfp gfp = GFP_NONE) { return kmalloc(size, gfp | GFP_ZERO); }
  void* kcalloc(std::size_t n, std::size_t size, Gfp gfp = GFP_NONE);  // null if n * size overflows
  void* krealloc(void* p, std::size_t size, Gfp gfp = GFP_NONE);        // null: p untouched
  std::size_t ksize(const void* p) const;
  void kfree(const void* p);

  // Object caches. `freeptr_offset` names a 4-byte field a free object may give up for the
  // freelist link (TYPESAFE_BY_RCU and ctor caches otherwise get the link after the object).
  Result<KmemCache*> kmem_cache_create(const char* name, std::size_t size, std::size_t align = 0,
                                       SlabFlags flags = SLAB_NONE, void (*ctor)(void*) = nullptr,
                                       std::size_t freeptr_offset = ~std::size_t{0});
  void kmem_cache_destroy(KmemCache* c);  // fatal report if objects are still allocated
  void* kmem_cache_alloc(KmemCache* c, Gfp gfp = GFP_NONE);
  void kmem_cache_free(KmemCache* c, void* p);
  std::size_t kmem_cache_alloc_bulk(KmemCache* c, std::size_t n, void** out, Gfp gfp = GFP_NONE);  // n or 0
  void kmem_cache_free_bulk(KmemCache* c, std::size_t n, void** objs);
  std::size_t kmem_cache_shrink(KmemCache* c);  // pages given back
  std::vector<SlabCacheInfo> slabinfo() const;
  // Gives every empty slab of every cache back to the buddy (after flushing this thread's
  // magazines and waiting for RCU-deferred frees). Returns the pages given back.
  std::size_t shrink();

  // Folios (memdesc/folio.hpp). folio_alloc: descriptor, then pages whose words all name it,
  // then publication with refcount 1; null + last_error() on failure, nothing left behind.
  // folio_put drops a reference; the last one frees pages and descriptor.
  Folio* folio_alloc(unsigned order, Gfp gfp = GFP_NONE, FolioKind kind = FolioKind::Anon);
  void folio_put(Folio* f);
  void* folio_address(const Folio* f) const;
  // The folio a page belongs to, from any of its pages; null for any page that is not a
  // folio's (and for addresses outside the arena). No reference is taken: the caller must
  // know the folio stays (it holds a reference).
  Folio* page_folio(const void* addr) const;
  Folio* pfn_folio(std::uint64_t pfn) const;  // pfn < pages()
  // Lockless lookup (the RCU protocol): the folio covering the page, with a reference the
  // caller puts, or null. Safe against concurrent frees and reuse.
  Folio* folio_lookup(const void* addr) const;
  Folio* folio_lookup_pfn(std::uint64_t pfn) const;

  // Page fragments (memdesc/frag.hpp). Each PageFragCache belongs to one user at a time;
  // page_frag_free works from any thread.
  PageFragCache page_frag_cache(FragBlock kind = FragBlock::Frag);
  void page_frag_free(const void* addr);

  // zsmalloc pools (memdesc/zsmalloc.hpp): compressed-object pools whose zspages come from
  // this arena. Each pool has its own zspage-descriptor and handle caches. A pool must be
  // destroyed before its arena (~Arena reports one that is not). Errc::invalid_config for a
  // chain outside 4..16.
  Result<std::unique_ptr<ZsPool>> zs_create_pool(const ZsPoolConfig& cfg = {});

  // Maintenance.
  void drain_thread_cache();                             // calling thread's magazines and page cache → slabs, buddy
  Result<std::size_t> purge(unsigned min_order = 0);     // free memory back to the OS; bytes purged
  void validate() const;  // every invariant; fatal report on violation. Call when quiescent.

  ArenaInfo info() const;
  std::uint64_t pages() const;
  unsigned max_order() const;

 private:
  Arena() = default;
  friend struct ArenaTestAccess;  // tests that corrupt words on purpose (tests/support)
  std::unique_ptr<core::Memmap> mm_;
  std::unique_ptr<page::PageAllocator> pages_;
  std::unique_ptr<core::Memmap> meta_mm_;  // the metadata region: every descriptor lives there (META-OOB)
  std::unique_ptr<page::PageAllocator> meta_pages_;
  std::unique_ptr<slab::SlabAllocator> slab_;
  std::unique_ptr<folio::FolioAllocator> folios_;  // destroyed before slab_
  std::unique_ptr<frag::FragAllocator> frags_;     // destroyed first
  double init_seconds_ = 0;
  std::uint64_t fork_generation_ = 0;  // rcu::fork_generation() at create: a fork child inherited it if larger
  std::atomic<std::uint64_t> live_pools_{0};  // ZsPools made by zs_create_pool and not yet destroyed
};

// Why the calling thread's most recent allocation returned null.
Error last_error();

// Resident set size of this process, in bytes.
std::size_t process_rss_bytes();

}  // namespace memdesc

// api/arena.cpp — the public Arena: a Memmap and the PageAllocator over it.
#include <memdesc/arena.hpp>

#include <cstdio>

#include "base/base.hpp"
#include "core/core.hpp"
#include "page/page.hpp"
#include "platform/platform.hpp"
#include "rcu/rcu.hpp"
#include "folio/folio.hpp"
#include "frag/frag.hpp"
#include "slab/slab.hpp"
#include "zsmalloc/zsmalloc.hpp"

namespace memdesc {

namespace {
// Descriptor slabs are at most order 3; a larger top order keeps the region's top bitmap small.
constexpr unsigned kMetaMaxOrder = 10;

// The metadata region's default size for an arena of `arena_bytes` [META-OOB]. The densest
// descriptors the layers make: a one-page zspage of 32-byte objects needs 128 handles of 8
// bytes and a 128-byte descriptor, 1152 bytes (0.28 of the page); every other use costs less (a
// folio 64 bytes a page, a slab descriptor 32). Half the arena covers that with room for
// partly used slabs, plus a slab of slack for each of the kMaxCaches caches. What it does not
// cover: descriptor slabs pinned sparsely (one live handle keeps a page of 512 handle slots),
// where the region can fill before the arena; allocations then fail cleanly (out_of_memory),
// and ArenaConfig::metadata_bytes sizes the region for such a workload. Address space only:
// resident where descriptor and handle slabs are.
std::size_t metadata_region_bytes(const ArenaConfig& cfg, std::size_t arena_bytes) {
  const std::size_t block = kPageSize << kMetaMaxOrder;
  if (cfg.metadata_bytes) return align_up(std::max(cfg.metadata_bytes, block), block);
  std::size_t slack = std::size_t{slab::kMaxCaches} * (kPageSize << 3);
  return align_up(arena_bytes / 2 + slack, block);
}
}  // namespace

Result<std::unique_ptr<Arena>> Arena::create(const ArenaConfig& cfg) {
  fault::arm_from_environment();
  std::uint64_t t0 = platform::now_ns();
  if (cfg.max_order > MemdescWord::kMaxOrder) return Error{Errc::invalid_config, 0, "max_order above 15"};
  if (cfg.movable_percent > 100) return Error{Errc::invalid_config, 0, "movable_percent above 100"};
  std::size_t block = kPageSize << cfg.max_order;
  // Before rounding up, which would wrap a size near SIZE_MAX to zero.
  if (cfg.size > core::Memmap::kMaxPages * kPageSize) return Error{Errc::invalid_config, 0, "arena larger than 16 TiB"};
  std::size_t size = align_up(cfg.size, block);
  std::size_t movable = align_down(size * cfg.movable_percent / 100, block);  // size <= 16 TiB: no overflow
  if (movable >= size) movable = size - block;  // NORMAL keeps at least one block

  auto mm = core::Memmap::create(size, cfg.max_order, movable);
  if (!mm.ok()) return mm.error();
  page::PageAllocConfig pc{cfg.pcp_high, cfg.pcp_batch, cfg.pcp_high_max, cfg.thread_cache};
  auto pa = page::PageAllocator::create(*mm.value(), pc);
  if (!pa.ok()) return pa.error();

  // The metadata region (META-OOB, docs/ARCHITECTURE.md): its own reservation between guard
  // gaps, its own words and buddy, no thread caches (a descriptor slab is made once per many
  // descriptors). Nothing a user is handed comes from it.
  if (cfg.metadata_bytes > core::Memmap::kMaxPages * kPageSize)
    return Error{Errc::invalid_config, 0, "metadata region larger than 16 TiB"};
  auto meta_mm = core::Memmap::create(metadata_region_bytes(cfg, size), kMetaMaxOrder, 0);
  if (!meta_mm.ok()) return meta_mm.error();
  page::PageAllocConfig meta_pc;
  meta_pc.thread_cache = false;
  auto meta_pa = page::PageAllocator::create(*meta_mm.value(), meta_pc);
  if (!meta_pa.ok()) return meta_pa.error();

  auto sa = slab::SlabAllocator::create(*pa.value(), *meta_pa.value());
  if (!sa.ok()) return sa.error();

  auto fa = folio::FolioAllocator::create(*sa.value(), *pa.value());
  if (!fa.ok()) return fa.error();
  auto fr = frag::FragAllocator::create(*sa.value(), *pa.value(), *fa.value());
  if (!fr.ok()) return fr.error();

  std::unique_ptr<Arena> a(new Arena());
  a->mm_ = std::move(mm.value());
  a->pages_ = std::move(pa.value());
  a->meta_mm_ = std::move(meta_mm.value());
  a->meta_pages_ = std::move(meta_pa.value());
  a->slab_ = std::move(sa.value());
  a->folios_ = std::move(fa.value());
  a->frags_ = std::move(fr.value());
  a->init_seconds_ = static_cast<double>(platform::now_ns() - t0) / 1e9;
  a->fork_generation_ = rcu::fork_generation();
  return a;
}

Arena::~Arena() {
  // What lives on this arena's memory and outlived it would crash later, far from the cause. A
  // fork child that inherited the arena cannot tell its own pools and caches from those of the
  // parent's threads that did not survive the fork (never to be used again, nor destroyed):
  // there the check is off (docs/LOCKING.md, "fork").
  std::uint64_t pools = live_pools_.load(std::memory_order_relaxed), caches = frags_ ? frags_->live_caches() : 0;
  bool inherited = rcu::fork_generation() != fork_generation_;
  if ((pools || caches) && !inherited) {
    char why[160];
    std::snprintf(why, sizeof why, "destroyed while %llu zsmalloc pool(s) and %llu page_frag cache(s) still use it: destroy them first",
                  static_cast<unsigned long long>(pools), static_cast<unsigned long long>(caches));
    report_bad_argument("~Arena", why);
  }
  frags_.reset();   // users of the slab and page layers first
  folios_.reset();
  slab_.reset();   // before the page allocators it takes slabs from
  meta_pages_.reset();
  pages_.reset();  // before the memmaps they point into
  meta_mm_.reset();
  mm_.reset();
}

void* Arena::alloc_pages(unsigned order, Gfp gfp) {
  return pages_->alloc(order, gfp, MemdescWord::misc(MiscSubtype::Pages, order));
}

namespace {
// The words a user may write with alloc_pages_desc [MEMDESC-OWNED]: the types and subtypes no
// layer of the arena follows or frees. A word of a type the arena's own layers own (a slab,
// folio, zspage or page_frag descriptor, a page table, a free page, a page being migrated)
// would make a later kfree, lookup or validate trust a pointer or an index it never made.
bool user_may_write(MemdescWord w) {
  switch (w.type()) {
    case MemdescType::Misc: return w.misc_subtype() != MiscSubtype::Migrating;
    case MemdescType::Movable:
    case MemdescType::Ksm:
    case MemdescType::NetPool:
    case MemdescType::HwPoison:
    case MemdescType::PerCpu: return true;
    default: return false;  // Buddy, Slab, File, Anon, PageTable, ZPDesc, Frag
  }
}
}  // namespace

void* Arena::alloc_pages_desc(unsigned order, MemdescWord word, Gfp gfp) {
  if (MEMDESC_UNLIKELY(!word.is_valid() || !user_may_write(word) || word.order() != order)) {
    char buf[96];
    format_word(word, buf, sizeof buf);
    char why[200];
    if (word.is_valid() && !user_may_write(word))
      std::snprintf(why, sizeof why, "word %s is of a type the arena's own layers own (MEMDESC-OWNED)", buf);
    else
      std::snprintf(why, sizeof why, "word %s cannot describe an order-%u allocation", buf, order);
    report_bad_argument("alloc_pages_desc", why);
  }
  return pages_->alloc(order, gfp, word);
}

Result<std::unique_ptr<ZsPool>> Arena::zs_create_pool(const ZsPoolConfig& cfg) {
  auto p = zsmalloc::Pool::create(*slab_, *pages_, cfg);
  if (!p.ok()) return p.error();
  return std::unique_ptr<ZsPool>(new ZsPool(std::move(p.value()), &live_pools_));
}

void Arena::free_pages(void* addr) {
  if (!addr) return;  // as kfree(NULL) and the kernel's free_pages(0)
  pages_->free_pages(addr);
}

void Arena::free_pages_desc(void* addr, MemdescWord word) {
  pages_->free(addr, word, "free_pages_desc");
}

bool Arena::contains(const void* p) const { return mm_->contains(p); }
std::uint64_t Arena::pfn_of(const void* p) const { return mm_->pfn(p); }
void* Arena::pfn_to_virt(std::uint64_t pfn) const { return mm_->addr(pfn); }
std::uint64_t Arena::pages() const { return mm_->pages(); }
unsigned Arena::max_order() const { return mm_->max_order(); }

std::optional<MemdescWord> Arena::virt_to_memdesc(const void* p) const {
  if (!mm_->contains(p)) return std::nullopt;
  return mm_->word(mm_->pfn(p));
}

MemdescWord Arena::pfn_to_memdesc(std::uint64_t pfn) const {
  if (pfn >= mm_->pages()) report_bad_argument("pfn_to_memdesc", "pfn beyond the end of the arena");
  return mm_->word(pfn);
}

void Arena::drain_thread_cache() {
  slab_->flush_thread();
  pages_->drain_local();
}

void* Arena::kmalloc(std::size_t size, Gfp gfp) { return slab_->kmalloc(size, gfp); }
void* Arena::kcalloc(std::size_t n, std::size_t size, Gfp gfp) { return slab_->kcalloc(n, size, gfp); }
void* Arena::krealloc(void* p, std::size_t size, Gfp gfp) { return slab_->krealloc(p, size, gfp); }
std::size_t Arena::ksize(const void* p) const { return slab_->ksize(p); }
void Arena::kfree(const void* p) { slab_->kfree(p); }

Result<KmemCache*> Arena::kmem_cache_create(const char* name, std::size_t size, std::size_t align, SlabFlags flags,
                                            void (*ctor)(void*), std::size_t freeptr_offset) {
  return slab_->cache_create({name, size, align, flags, ctor, freeptr_offset});
}
void Arena::kmem_cache_destroy(KmemCache* c) {
  if (!c) return;
  slab_->check_owner(c, "kmem_cache_destroy");
  slab_->cache_destroy(c);
}
// A null cache is a report, not a fault on the fast paths' first load (one compare here).
void* Arena::kmem_cache_alloc(KmemCache* c, Gfp gfp) {
  if (MEMDESC_UNLIKELY(!c)) slab_->report_foreign_cache(c, "kmem_cache_alloc");
  return slab_->cache_alloc(c, gfp);
}
void Arena::kmem_cache_free(KmemCache* c, void* p) {
  if (MEMDESC_UNLIKELY(!c)) slab_->report_foreign_cache(c, "kmem_cache_free");
  slab_->cache_free(c, p);
}
std::size_t Arena::kmem_cache_alloc_bulk(KmemCache* c, std::size_t n, void** out, Gfp gfp) {
  slab_->check_owner(c, "kmem_cache_alloc_bulk");
  return slab_->alloc_bulk(c, gfp, n, out);
}
void Arena::kmem_cache_free_bulk(KmemCache* c, std::size_t n, void** objs) {
  slab_->check_owner(c, "kmem_cache_free_bulk");
  slab_->free_bulk(c, n, objs);
}
std::size_t Arena::kmem_cache_shrink(KmemCache* c) {
  slab_->check_owner(c, "kmem_cache_shrink");
  return slab_->shrink(c);
}
std::vector<SlabCacheInfo> Arena::slabinfo() const { return slab_->slabinfo(); }
std::size_t Arena::shrink() { return slab_->shrink_all(); }
// Both memmaps' free blocks (the region's too: freed descriptor slabs); the bytes purged, or
// the first error after trying both.
Result<std::size_t> Arena::purge(unsigned min_order) {
  auto user = pages_->purge(min_order);
  auto meta = meta_pages_->purge(min_order);  // (each allocator clamps to its own top order)
  if (!user.ok()) return user.error();
  if (!meta.ok()) return meta.error();
  return user.value() + meta.value();
}
// Each buddy's own walk of its zones, then one walk of the arena's words for every layer that
// owns blocks described by descriptors (slabs, folios, page_frag blocks), and one of the
// metadata region's, which holds slabs only (META-OOB).
void Arena::validate() const {
  pages_->validate();
  meta_pages_->validate();
  slab::SlabAllocator::SlabCensus census;
  auto owned = [](MemdescWord w) {
    return w.is(MemdescType::Slab) || w.is(MemdescType::Frag) || folio::FolioAllocator::is_folio_word(w);
  };
  mm_->for_each_block(owned, [&](std::uint64_t pfn, MemdescWord w) -> std::uint64_t {
    if (w.is(MemdescType::Slab)) return slab_->validate_slab(*mm_, pfn, w, census);
    if (w.is(MemdescType::Frag)) return frags_->validate_block(pfn, w);
    return folios_->validate_block(pfn, w);
  });
  auto not_free = [](MemdescWord w) { return !w.is(MemdescType::Buddy); };
  meta_mm_->for_each_block(not_free, [&](std::uint64_t pfn, MemdescWord w) -> std::uint64_t {
    if (!w.is(MemdescType::Slab))
      report_invariant("META-OOB", "metadata region pfn %llu has word %s: the region holds descriptor slabs only",
                       static_cast<unsigned long long>(pfn), to_string(w).c_str());
    return slab_->validate_slab(*meta_mm_, pfn, w, census);
  });
  slab_->validate_caches(census);
}

Folio* Arena::folio_alloc(unsigned order, Gfp gfp, FolioKind kind) { return folios_->alloc(order, gfp, kind); }
void Arena::folio_put(Folio* f) { folios_->put(f); }
void* Arena::folio_address(const Folio* f) const { return folios_->address(f); }
Folio* Arena::page_folio(const void* addr) const { return mm_->contains(addr) ? folios_->page_folio(mm_->pfn(addr)) : nullptr; }
Folio* Arena::pfn_folio(std::uint64_t pfn) const {
  if (pfn >= mm_->pages()) report_bad_argument("pfn_folio", "pfn beyond the end of the arena");
  return folios_->page_folio(pfn);
}
Folio* Arena::folio_lookup(const void* addr) const { return mm_->contains(addr) ? folios_->lookup(mm_->pfn(addr)) : nullptr; }
Folio* Arena::folio_lookup_pfn(std::uint64_t pfn) const {
  if (pfn >= mm_->pages()) report_bad_argument("folio_lookup_pfn", "pfn beyond the end of the arena");
  return folios_->lookup(pfn);
}

PageFragCache Arena::page_frag_cache(FragBlock kind) { return frags_->make_cache(kind); }
void Arena::page_frag_free(const void* addr) { frags_->free(addr); }

ArenaInfo Arena::info() const {
  ArenaInfo i;
  i.arena_bytes = mm_->bytes();
  i.pages = mm_->pages();
  i.max_order = mm_->max_order();
  const auto& m = mm_->metadata();
  i.metadata.words = m.words.load(std::memory_order_relaxed);
  // The metadata region's own words count where descriptor slabs are (descriptors); its buddy
  // bitmaps, reserved like the arena's, count in full.
  i.metadata.free_state = m.free_state.load(std::memory_order_relaxed) +
                          meta_mm_->metadata().free_state.load(std::memory_order_relaxed);
  i.metadata.caches = m.caches.load(std::memory_order_relaxed);
  i.metadata.descriptors = m.descriptors.load(std::memory_order_relaxed);
  i.metadata.total = i.metadata.words + i.metadata.free_state + i.metadata.caches + i.metadata.descriptors;
  i.bytes_per_page = static_cast<double>(i.metadata.total) / static_cast<double>(i.pages);
  i.init_seconds = init_seconds_;
  i.rss_bytes = platform::rss_bytes();
  i.word_array_resident_bytes = mm_->word_array_resident_bytes();
  i.cached_pages = pages_->cached_pages();
  i.folios = folios_->live_small() + folios_->live_large();
  i.folio_descriptor_bytes = folios_->live_small() * sizeof(Folio) + folios_->live_large() * sizeof(LargeFolio);
  i.frag_blocks = frags_->live_blocks();
  i.metadata_region_bytes = meta_mm_->bytes();
  i.metadata_region_free_pages = meta_pages_->zone_snapshot(core::ZoneId::Normal).free_pages;
  for (unsigned z = 0; z < core::kNrZones; ++z) {
    auto s = pages_->zone_snapshot(static_cast<core::ZoneId>(z));
    ZoneInfo& zi = i.zones[z];
    zi.name = core::zone_name(s.id);
    zi.start_pfn = mm_->zone_start(s.id);
    zi.pages = s.pages;
    zi.free_pages = s.free_pages;
    for (unsigned k = 0; k <= MemdescWord::kMaxOrder; ++k) zi.nr_free[k] = s.nr_free[k];
    i.free_pages += s.free_pages;
  }
  return i;
}

Error last_error() { return current_last_error(); }

std::size_t process_rss_bytes() { return platform::rss_bytes(); }

}  // namespace memdesc

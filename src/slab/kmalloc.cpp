// slab/kmalloc.cpp — the kmalloc family's slow paths, and validation and statistics of caches.
#include <cstdio>
#include <vector>

#include "base/base.hpp"
#include "slab/slab.hpp"

namespace memdesc::slab {

void* SlabAllocator::kmalloc_large_slow(std::size_t size, unsigned gfp) {
  if (size == 0) return kZeroSizePtr;
  std::uint64_t pages = div_ceil(size, kPageSize);
  unsigned order = pages <= 1 ? 0 : 64 - static_cast<unsigned>(__builtin_clzll(pages - 1));
  if (size > (kPageSize << mm_->max_order())) {
    page::tls_last_error = Error{Errc::out_of_memory, 0, "kmalloc: size above the largest block"};
    return nullptr;
  }
  // Misc(kmalloc_large, order) in every page: kfree finds the order in the word. Straight from
  // the buddy, as kfree gives the block straight back: through this thread's page cache, each
  // refill would take a batch of 16-32 KiB blocks that only this thread could then use.
  return pa_->alloc(order, gfp | GFP_NOCACHE, MemdescWord::misc(MiscSubtype::KmallocLarge, order));
}

void SlabAllocator::kfree_other_slow(void* p) {
  if (p == nullptr || p == kZeroSizePtr) return;
  if (!mm_->contains(p))
    report_foreign_pointer("kfree", p, mm_->addr(0), reinterpret_cast<void*>(mm_->base() + mm_->bytes()));
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Misc) && w.misc_subtype() == MiscSubtype::KmallocLarge) {
    // Straight to the buddy (checking that p is the block's first byte): a large block parked
    // in this thread's page cache could not merge with its neighbours, and other threads
    // could not reuse it; measured, the alloc_test shape's arena footprint falls ~0.4 MiB.
    pa_->free_direct(p, w, "kfree");
    return;
  }
  char found[96];
  format_word(w, found, sizeof found);
  if (w.is(MemdescType::Buddy)) report_double_free("kfree", p, mm_->pfn(p), found);
  report_wrong_type("kfree", p, "a slab object or a kmalloc_large block", found);
}

std::size_t SlabAllocator::ksize(const void* p) const {
  if (p == nullptr || p == kZeroSizePtr) return 0;
  if (!mm_->contains(p))
    report_foreign_pointer("ksize", p, mm_->addr(0), reinterpret_cast<void*>(mm_->base() + mm_->bytes()));
  MemdescWord w = mm_->word(mm_->pfn(p));
  if (w.is(MemdescType::Slab)) return caches_[w.aux()].load(std::memory_order_relaxed)->object_size;
  if (w.is(MemdescType::Misc) && w.misc_subtype() == MiscSubtype::KmallocLarge) return kPageSize << w.order();
  char found[96];
  format_word(w, found, sizeof found);
  report_wrong_type("ksize", p, "a slab object or a kmalloc_large block", found);
}

void* SlabAllocator::krealloc(void* p, std::size_t size, unsigned gfp) {
  if (p == nullptr || p == kZeroSizePtr) return kmalloc(size, gfp);
  if (size == 0) {
    kfree(p);
    return kZeroSizePtr;
  }
  std::size_t have = ksize(p);
  if (size <= have) return p;  // fits where it is
  void* q = kmalloc(size, gfp & ~static_cast<unsigned>(GFP_ZERO));
  if (!q) return nullptr;  // p is untouched
  std::memcpy(q, p, have);
  if (gfp & GFP_ZERO) std::memset(static_cast<char*>(q) + have, 0, ksize(q) - have);
  kfree(p);
  return q;
}

void* SlabAllocator::kcalloc(std::size_t n, std::size_t size, unsigned gfp) {
  std::size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    page::tls_last_error = Error{Errc::out_of_memory, 0, "kcalloc: n * size overflows"};
    return nullptr;
  }
  return kmalloc(bytes, gfp | GFP_ZERO);
}

std::vector<SlabCacheInfo> SlabAllocator::slabinfo() const {
  std::vector<SlabCacheInfo> out;
  for (const auto& slot : caches_) {
    KmemCache* c = slot.load(std::memory_order_acquire);
    if (!c) continue;
    SlabCacheInfo i;
    i.name = c->name;
    i.id = c->id;
    i.object_size = c->object_size;
    i.stride = c->stride;
    i.objs_per_slab = c->objects - c->self;
    i.pages_per_slab = 1u << c->order;
    i.flags = c->flags;
    i.max_limit = c->mag_cap_max;
    LockGuard g(c->lock);
    i.limit = c->mag_cap.load(std::memory_order_relaxed);
    i.active_objs = c->inuse;
    i.slabs = c->nr_slabs;
    i.num_objs = c->nr_slabs * i.objs_per_slab;
    i.partial_slabs = c->nr_partial;
    i.empty_slabs = c->nr_empty;
    i.descriptor_bytes = c->nr_slabs * sizeof(Slab);
    out.push_back(i);
  }
  return out;
}

// Walks the whole arena once: every slab head found through its words is checked against its
// descriptor (SLAB-WORD, SLAB-COUNT) and the lists are checked against the slabs (SLAB-LIST).
void SlabAllocator::validate() const {
  std::vector<std::uint64_t> slabs(kMaxCaches), partial(kMaxCaches), empty(kMaxCaches);
  for (std::uint64_t pfn = 0; pfn < mm_->pages();) {
    MemdescWord w = mm_->word(pfn);
    if (!w.is(MemdescType::Slab)) {
      ++pfn;
      continue;
    }
    auto* s = w.desc_as<Slab>();
    KmemCache* c = caches_[w.aux()].load(std::memory_order_acquire);
    if (!c || s->cache != c || s->pfn != pfn || s->order != w.order())
      report_invariant("SLAB-WORD", "pfn %llu: word %s does not match its descriptor", static_cast<unsigned long long>(pfn),
                       to_string(w).c_str());
    for (std::uint64_t i = 1; i < (std::uint64_t{1} << s->order); ++i)
      if (mm_->word(pfn + i) != w)
        report_invariant("SLAB-WORD", "pfn %llu of the slab at %llu has word %s", static_cast<unsigned long long>(pfn + i),
                         static_cast<unsigned long long>(pfn), to_string(mm_->word(pfn + i)).c_str());
    LockGuard g(c->lock);
    std::uint32_t nfree = 0;
    char* base = static_cast<char*>(mm_->addr(pfn));
    for (std::uint32_t f = s->freelist; f; ++nfree) {
      if (f - 1 >= std::uint32_t{s->bump} * c->stride || !c->on_slot_boundary(f - 1) || nfree > s->objects)
        report_invariant("SLAB-COUNT", "cache %s slab pfn %llu: freelist corrupted", c->name, static_cast<unsigned long long>(pfn));
      std::uint32_t link;
      std::memcpy(&link, base + (f - 1) + c->freeptr_off, 4);
      f = link ^ (static_cast<std::uint32_t>(g_secret >> 32) ^
                  static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(base + (f - 1)) >> 3));
    }
    if (s->inuse + nfree + (s->objects - s->bump) != s->objects)
      report_invariant("SLAB-COUNT", "cache %s slab pfn %llu: inuse %u + free %u + never used %u != %u", c->name,
                       static_cast<unsigned long long>(pfn), s->inuse, nfree, s->objects - s->bump, s->objects);
    bool has_free = s->inuse < s->objects;
    SlabList want = s->inuse == c->self ? SlabList::Empty : has_free ? SlabList::Partial : SlabList::None;
    if (s->list != want && !(want == SlabList::Empty && s->list == SlabList::None))
      report_invariant("SLAB-LIST", "cache %s slab pfn %llu (inuse %u of %u) is on the wrong list", c->name,
                       static_cast<unsigned long long>(pfn), s->inuse, s->objects);
    ++slabs[c->id];
    partial[c->id] += s->list == SlabList::Partial;
    empty[c->id] += s->list == SlabList::Empty;
    pfn += std::uint64_t{1} << s->order;
  }
  for (unsigned id = 0; id < kMaxCaches; ++id) {
    KmemCache* c = caches_[id].load(std::memory_order_acquire);
    if (!c) continue;
    LockGuard g(c->lock);
    // Slabs waiting for a grace period are counted by no list.
    if (partial[id] != c->nr_partial || empty[id] != c->nr_empty)
      report_invariant("SLAB-LIST", "cache %s: %llu partial / %llu empty slabs found, counters say %llu / %llu", c->name,
                       static_cast<unsigned long long>(partial[id]), static_cast<unsigned long long>(empty[id]),
                       static_cast<unsigned long long>(c->nr_partial), static_cast<unsigned long long>(c->nr_empty));
    if (c->nfull + c->nempty > c->depot_max())
      report_invariant("DEPOT-MAX", "cache %s: depot holds %u full and %u empty arrays, at most %u", c->name, c->nfull,
                       c->nempty, c->depot_max());
    std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
    if (cap < 1 || cap > c->mag_cap_max)
      report_invariant("MAG-GROW", "cache %s: stack capacity %u outside 1..%u", c->name, cap, c->mag_cap_max);
  }
}

}  // namespace memdesc::slab

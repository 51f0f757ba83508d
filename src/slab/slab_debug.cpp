// slab/slab_debug.cpp — checked-build per-object state (live set, poison, red zones), the
// misuse reports of the free paths, validate() and slabinfo().
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/base.hpp"
#include "slab/slab_alloc.hpp"

namespace memdesc::slab {

// ---- checked builds: per-object state ------------------------------------------------------

void SlabAllocator::checked_on_alloc(KmemCache* c, void* p) {
  if (c->poison) {
    auto* b = static_cast<unsigned char*>(p);
    for (std::uint32_t i = 8; i < c->object_size; ++i)
      if (b[i] != kPoisonFree) report_bad_object("kmem_cache_alloc", p, c->name, "poison overwritten: written after free");
  }
  if (c->redzone_off) std::memset(static_cast<char*>(p) + c->redzone_off, kRedZone, kRedZoneBytes);
  MutexGuard g(c->live_mu);
  if (!c->live.insert(reinterpret_cast<std::uintptr_t>(p)).second)
    report_bad_object("kmem_cache_alloc", p, c->name, "object handed out twice (allocator state corrupted)");
}

void SlabAllocator::checked_on_free(KmemCache* c, void* p, const char* op) {
  {
    MutexGuard g(c->live_mu);
    if (c->live.erase(reinterpret_cast<std::uintptr_t>(p)) == 0)
      report_bad_object(op, p, c->name, "object is not allocated (double free, or never allocated)");
  }
  if (c->redzone_off) {
    auto* rz = static_cast<unsigned char*>(p) + c->redzone_off;
    for (std::uint32_t i = 0; i < kRedZoneBytes; ++i)
      if (rz[i] != kRedZone) report_bad_object(op, p, c->name, "red zone overwritten: written past the end");
  }
  if (c->poison && c->object_size > 8) std::memset(static_cast<char*>(p) + 8, kPoisonFree, c->object_size - 8);  // (the link may use bytes 0-7)
}

bool SlabAllocator::is_live_object(KmemCache* c, const void* p) const {
  if constexpr (!kChecked) return true;
  MutexGuard g(c->live_mu);
  return c->live.count(reinterpret_cast<std::uintptr_t>(p)) != 0;
}

// ---- misuse reports ------------------------------------------------------------------------

void SlabAllocator::report_dead_cache(const KmemCache* c, const char* op) {
  report_bad_argument(op, (std::string("cache ") + c->name + " was destroyed (kmem_cache_destroy)").c_str());
}

void SlabAllocator::report_foreign_cache(const KmemCache* c, const char* op) const {
  if (!c) report_bad_argument(op, "null cache");
  report_bad_argument(op, "the cache belongs to another arena (each arena's caches are its own)");
}

void SlabAllocator::free_bad_slow(KmemCache* c, void* p, const char* op) {
  if (c) check_alive(c, op);
  core::FoundWord f = core::diagnose_free(c ? *c->mm : *mm_, op, p);  // foreign pointer, double free
  MemdescWord w = f.word;
  if (!w.is(MemdescType::Slab)) {
    char want[64];
    std::snprintf(want, sizeof want, "an object of cache %s", c ? c->name : "?");
    report_wrong_type(op, p, want, f.text);
  }
  KmemCache* owner = caches_[cache_id_of_aux(w.aux())].load(std::memory_order_acquire);
  if (c && owner != c) {
    char why[96];
    std::snprintf(why, sizeof why, "object belongs to cache %s", owner ? owner->name : "(destroyed)");
    report_bad_object(op, p, c->name, why);
  }
  report_bad_object(op, p, owner ? owner->name : "?", "not the start of an object");
}

void SlabAllocator::free_bad_id_slow(unsigned id, void* p, const char* op) {
  free_bad_slow(caches_[id].load(std::memory_order_acquire), p, op);
}

void SlabAllocator::double_free_id_slow(unsigned id, void* p, const char* op) {
  double_free_slow(caches_[id].load(std::memory_order_acquire), p, op);
}

void SlabAllocator::double_free_slow(KmemCache* c, void* p, const char* op) {
  report_bad_object(op, p, c->name, "double free (object is already free)");
}

// ---- statistics and validation -----------------------------------------------------------------

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
    i.objs_per_slab = c->objects - c->reserved_slots;
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

// The slab whose first page is pfn (word w): SLAB-WORD, SLAB-COUNT and its list (SLAB-LIST),
// counted into `census`; its page count.
std::uint64_t SlabAllocator::validate_slab(const core::Memmap& mm, std::uint64_t pfn, MemdescWord w, SlabCensus& census) const {
  auto* s = w.desc_as<Slab>();
  KmemCache* c = caches_[cache_id_of_aux(w.aux())].load(std::memory_order_acquire);
  if (c && c->word_aux == w.aux() && c->mm != &mm)
    report_invariant("META-OOB", "pfn %llu: a slab of cache %s in the %s", static_cast<unsigned long long>(pfn), c->name,
                     c->internal ? "arena (a layer's own cache belongs in the metadata region)"
                                 : "metadata region (a user's cache belongs in the arena)");
  if (!c || c->word_aux != w.aux() || s->cache != c || s->pfn != pfn || s->order != w.order())
    report_invariant("SLAB-WORD", "pfn %llu: word %s does not match its descriptor", static_cast<unsigned long long>(pfn),
                     to_string(w).c_str());
  mm.check_block_words("SLAB-WORD", "slab", pfn, std::uint64_t{1} << s->order, w);
  LockGuard g(c->lock);
  std::uint32_t nfree = 0;
  char* base = static_cast<char*>(mm.addr(pfn));
  for (std::uint32_t f = s->freelist; f; ++nfree) {
    if (f - 1 >= std::uint32_t{s->bump} * c->stride || !c->on_slot_boundary(f - 1) || nfree > s->objects)
      report_invariant("SLAB-COUNT", "cache %s slab pfn %llu: freelist corrupted", c->name, static_cast<unsigned long long>(pfn));
    f = load_link(base + (f - 1), c->freeptr_off);
  }
  if (s->inuse + nfree + (s->objects - s->bump) != s->objects)
    report_invariant("SLAB-COUNT", "cache %s slab pfn %llu: inuse %u + free %u + never used %u != %u", c->name,
                     static_cast<unsigned long long>(pfn), s->inuse, nfree, s->objects - s->bump, s->objects);
  bool has_free = s->inuse < s->objects;
  SlabList want = s->inuse == c->reserved_slots ? SlabList::Empty : has_free ? SlabList::Partial : SlabList::None;
  if (s->list != want && !(want == SlabList::Empty && s->list == SlabList::None))
    report_invariant("SLAB-LIST", "cache %s slab pfn %llu (inuse %u of %u) is on the wrong list", c->name,
                     static_cast<unsigned long long>(pfn), s->inuse, s->objects);
  census.partial[c->id] += s->list == SlabList::Partial;
  census.empty[c->id] += s->list == SlabList::Empty;
  return std::uint64_t{1} << s->order;
}

// What the walk counted against each cache's counters (SLAB-LIST), and DEPOT-MAX, MAG-GROW.
void SlabAllocator::validate_caches(const SlabCensus& census) const {
  for (unsigned id = 0; id < kMaxCaches; ++id) {
    KmemCache* c = caches_[id].load(std::memory_order_acquire);
    if (!c) continue;
    LockGuard g(c->lock);
    // Slabs waiting for a grace period are counted by no list.
    if (census.partial[id] != c->nr_partial || census.empty[id] != c->nr_empty)
      report_invariant("SLAB-LIST", "cache %s: %llu partial / %llu empty slabs found, counters say %llu / %llu", c->name,
                       static_cast<unsigned long long>(census.partial[id]), static_cast<unsigned long long>(census.empty[id]),
                       static_cast<unsigned long long>(c->nr_partial), static_cast<unsigned long long>(c->nr_empty));
    // MAG-GROW first: DEPOT-MAX's bound divides by the capacity.
    std::uint32_t cap = c->mag_cap.load(std::memory_order_relaxed);
    if (cap < 1 || cap > c->mag_cap_max)
      report_invariant("MAG-GROW", "cache %s: magazine capacity %u outside 1..%u", c->name, cap, c->mag_cap_max);
    if (c->nfull + c->nempty > c->depot_max())
      report_invariant("DEPOT-MAX", "cache %s: depot holds %u full and %u empty magazines, at most %u", c->name, c->nfull,
                       c->nempty, c->depot_max());
  }
}

}  // namespace memdesc::slab

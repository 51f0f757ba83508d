// bench/micro_pages.cpp — micro-benchmarks that keep the stated fast-path costs honest: the page
// allocator's (page/page_alloc.hpp: a cached order-0 alloc+free pair is a handful of
// nanoseconds; the uncached pair shows what the per-thread cache saves) and the slab layer's
// (slab/slab.hpp: a kmalloc+kfree pair; 1000 then 1000 through the depot).
#include <benchmark/benchmark.h>

#include <memdesc/memdesc.hpp>
#include <vector>

using namespace memdesc;

namespace {

Arena& arena(bool cache) {
  static std::unique_ptr<Arena> with = [] {
    auto r = Arena::create({});
    return std::move(r.value());
  }();
  static std::unique_ptr<Arena> without = [] {
    ArenaConfig c;
    c.thread_cache = false;
    auto r = Arena::create(c);
    return std::move(r.value());
  }();
  return cache ? *with : *without;
}

// Alloc+free pairs of order st.range(0): through the per-thread cache, or the buddy alone.
template <bool Cached>
void BM_Pair(benchmark::State& st) {
  Arena& a = arena(Cached);
  unsigned order = static_cast<unsigned>(st.range(0));
  for (auto _ : st) {
    void* p = a.alloc_pages(order);
    benchmark::DoNotOptimize(p);
    a.free_pages(p);
  }
}
BENCHMARK_TEMPLATE(BM_Pair, true)->Name("BM_PairCached")->Arg(0)->Arg(1)->Arg(3);
BENCHMARK_TEMPLATE(BM_Pair, false)->Name("BM_PairBuddy")->Arg(0)->Arg(4)->Arg(10);

// kmalloc + kfree of one size: the slab fast paths (slab/slab.hpp states their cost).
void BM_KmallocPair(benchmark::State& st) {
  Arena& a = arena(true);
  std::size_t size = static_cast<std::size_t>(st.range(0));
  for (auto _ : st) {
    void* p = a.kmalloc(size);
    benchmark::DoNotOptimize(p);
    a.kfree(p);
  }
}
BENCHMARK(BM_KmallocPair)->Arg(16)->Arg(256)->Arg(4096);

// 1000 kmalloc(64) then 1000 kfree: magazines cycle through the cache's depot.
void BM_KmallocBulk1000(benchmark::State& st) {
  Arena& a = arena(true);
  std::vector<void*> v(1000);
  for (auto _ : st) {
    for (auto& p : v) p = a.kmalloc(64);
    benchmark::DoNotOptimize(v.data());
    for (void* p : v) a.kfree(p);
  }
  st.SetItemsProcessed(st.iterations() * 1000);
}
BENCHMARK(BM_KmallocBulk1000);

void BM_Lookup(benchmark::State& st) {
  Arena& a = arena(true);
  void* p = a.alloc_pages(2);
  for (auto _ : st) benchmark::DoNotOptimize(a.virt_to_memdesc(static_cast<char*>(p) + 4096));
  a.free_pages(p);
}
BENCHMARK(BM_Lookup);

// page_frag: a fragment from this thread's cache, then page_frag_free (the bump fast path plus
// the free's word load and atomic decrement; the block is reused in place every 16 pairs).
void BM_FragPair(benchmark::State& st) {
  Arena& a = arena(true);
  PageFragCache nc = a.page_frag_cache();
  std::size_t size = static_cast<std::size_t>(st.range(0));
  for (auto _ : st) {
    void* p = nc.alloc(size);
    benchmark::DoNotOptimize(p);
    a.page_frag_free(p);
  }
}
BENCHMARK(BM_FragPair)->Arg(64)->Arg(2048);

// The lockless folio lookup from an interior page: rcu read section, word, try-get, re-check.
void BM_FolioLookup(benchmark::State& st) {
  Arena& a = arena(true);
  Folio* f = a.folio_alloc(3);
  char* p = static_cast<char*>(a.folio_address(f)) + 5 * 4096;
  for (auto _ : st) {
    Folio* g = a.folio_lookup(p);
    benchmark::DoNotOptimize(g);
    a.folio_put(g);
  }
  a.folio_put(f);
}
BENCHMARK(BM_FolioLookup);

}  // namespace

BENCHMARK_MAIN();

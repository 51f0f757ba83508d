// Fault injection: with every Nth page and descriptor allocation failing, the slab and kmalloc
// paths return null with out_of_memory, never crash, and leak nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memdesc/zram.hpp>
#include <string>
#include <vector>
#include <random>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct FaultGuard {
  FaultGuard(std::uint64_t page, std::uint64_t desc) { set_fault_injection(page, desc); }
  ~FaultGuard() { set_fault_injection(0, 0); }
};

void random_workload(Arena& a, KmemCache* c, unsigned seed, std::uint64_t& failures) {
  std::mt19937_64 rng(seed);
  std::map<void*, std::pair<KmemCache*, std::uint64_t>> live;  // object -> (cache or null for kmalloc, tag)
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 100 < 55) {
      void* p;
      std::size_t size;
      KmemCache* from = nullptr;
      if (rng() % 4 == 0) {
        p = a.kmem_cache_alloc(c);
        from = c;
        size = 200;
      } else {
        size = 1 + rng() % ((rng() % 10 == 0) ? 40000 : 2000);  // some kmalloc_large
        p = a.kmalloc(size);
      }
      if (!p) {
        ASSERT_EQ(last_error().code, Errc::out_of_memory);
        ++failures;
        continue;
      }
      std::uint64_t tag = rng() & ((1ull << 40) - 1);
      test::fill(p, size & ~std::size_t{7}, tag);
      live[p] = {from, tag | (std::uint64_t{size} << 40)};
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      std::size_t size = it->second.second >> 40;
      ASSERT_EQ(test::check(it->first, size & ~std::size_t{7}, it->second.second & ((1ull << 40) - 1)), SIZE_MAX);
      if (it->second.first) a.kmem_cache_free(it->second.first, it->first);
      else a.kfree(it->first);
      live.erase(it);
    }
  }
  for (auto& [p, v] : live) {
    if (v.first) a.kmem_cache_free(v.first, p);
    else a.kfree(p);
  }
}

}  // namespace

TEST(FaultInjection, EveryFailureIsCleanAndNothingLeaks) {
  for (auto [page_every, desc_every] : {std::pair<std::uint64_t, std::uint64_t>{7, 0}, {0, 3}, {5, 2}, {1, 0}}) {
    auto a = test::make_arena(std::size_t{64} << 20);
    KmemCache* c = a->kmem_cache_create("fault", 200).value();
    std::uint64_t failures = 0;
    {
      FaultGuard g(page_every, desc_every);
      random_workload(*a, c, static_cast<unsigned>(page_every * 10 + desc_every), failures);
      FaultCounts fc = fault_injection_counts();
      EXPECT_GT(fc.page_failed + fc.desc_failed, 0u) << page_every << "/" << desc_every;
    }
    EXPECT_GT(failures, 0u);
    a->kmem_cache_destroy(c);  // reports a leak if any failure kept an object
    test::expect_all_returned(*a);  // the arena and the metadata region whole again
  }
}

TEST(FaultInjection, PagesFailEveryNth) {
  auto a = test::make_arena(std::size_t{16} << 20);
  FaultGuard g(4, 0);
  int ok = 0, failed = 0;
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) {
    void* p = a->alloc_pages(0);
    if (p) ++ok, v.push_back(p);
    else ++failed;
  }
  EXPECT_EQ(failed, 25);
  EXPECT_EQ(ok, 75);
  for (void* p : v) a->free_pages(p);
}

// Every allocator that allocates: folios, page fragments (both block kinds), zsmalloc (malloc,
// compaction, migration) and the compressed store. Each injected failure is a clean error
// (null or Errc::out_of_memory, and the cache, pool or store still works); once the workload
// has given everything back, the arena coalesces fully.
TEST(FaultInjection, EveryAllocatorFailsCleanly) {
  for (auto [page_every, desc_every] : {std::pair<std::uint64_t, std::uint64_t>{5, 0}, {0, 2}, {3, 3}, {1, 0}, {0, 1}}) {
    SCOPED_TRACE(std::to_string(page_every) + "/" + std::to_string(desc_every));
    auto a = test::make_arena(std::size_t{64} << 20);
    auto pool = a->zs_create_pool({}).value();
    ZramConfig zc;
    zc.pages = 64;
    auto zr = ZramStore::create(std::move(a->zs_create_pool({}).value()), zc);
    ASSERT_TRUE(zr.ok());
    ZramStore& z = *zr.value();
    std::uint64_t errors = 0;
    {
      FaultGuard g(page_every, desc_every);
      std::mt19937_64 rng(page_every * 7 + desc_every);
      std::vector<Folio*> folios;
      std::vector<void*> frags;
      std::vector<std::pair<ZsHandle, std::uint64_t>> objs;
      PageFragCache nc[2] = {a->page_frag_cache(FragBlock::Frag), a->page_frag_cache(FragBlock::Folio)};
      std::vector<char> page(kPageSize), back(kPageSize);
      for (int i = 0; i < 3000; ++i) {
        switch (rng() % 6) {
          case 0:
            if (Folio* f = a->folio_alloc(static_cast<unsigned>(rng() % 3))) {
              folios.push_back(f);
            } else {
              ++errors;
              EXPECT_EQ(last_error().code, Errc::out_of_memory);
            }
            break;
          case 1:
            if (void* p = nc[rng() % 2].alloc(1 + rng() % 5000)) {
              frags.push_back(p);
            } else {
              ++errors;
              EXPECT_EQ(last_error().code, Errc::out_of_memory);
            }
            break;
          case 2: {
            std::uint64_t tag = rng();
            auto h = pool->malloc(1 + rng() % 4096);
            if (!h.ok()) {
              ++errors;
              EXPECT_EQ(h.error().code, Errc::out_of_memory);
              break;
            }
            pool->write(h.value(), &tag, std::min<std::size_t>(8, pool->object_capacity(h.value())));
            objs.push_back({h.value(), tag});
            break;
          }
          case 3: {
            std::uint64_t index = rng() % zc.pages;
            for (std::size_t b = 0; b < kPageSize; ++b) page[b] = static_cast<char>(b % (1 + index) == 0 ? index : b);
            if (Error e = z.store(index, page.data())) {
              ++errors;
              EXPECT_EQ(e.code, Errc::out_of_memory);
            } else {
              ASSERT_FALSE(z.load(index, back.data()));
              ASSERT_EQ(page, back);
            }
            break;
          }
          case 4:  // compaction and migration allocate too
            (void)pool->compact();
            if (!objs.empty()) {
              auto pages = pool->pages();
              if (!pages.empty()) (void)pool->isolate_page(pages[rng() % pages.size()].addr);
              for (const ZsPageInfo& p : pool->pages())
                if (p.isolated) {
                  ZsMigrateResult r = pool->migrate_page(p.addr);
                  if (r != ZsMigrateResult::migrated) pool->putback_page(p.addr);
                }
            }
            break;
          case 5:  // give some back
            if (!folios.empty()) a->folio_put(folios.back()), folios.pop_back();
            if (!frags.empty()) a->page_frag_free(frags.back()), frags.pop_back();
            if (!objs.empty()) {
              std::uint64_t got = 0;
              char buf[8];
              const void* p = pool->read_begin(objs.back().first, buf, std::min<std::size_t>(8, pool->object_capacity(objs.back().first)));
              std::memcpy(&got, p, std::min<std::size_t>(8, pool->object_capacity(objs.back().first)));
              pool->read_end(objs.back().first, p);
              if (pool->object_capacity(objs.back().first) >= 8) {
                EXPECT_EQ(got, objs.back().second);
              }
              pool->free(objs.back().first);
              objs.pop_back();
            }
            break;
        }
      }
      FaultCounts fc = fault_injection_counts();
      EXPECT_GT(fc.page_failed + fc.desc_failed, 0u);
      for (Folio* f : folios) a->folio_put(f);
      for (void* p : frags) a->page_frag_free(p);
      for (auto& [h, tag] : objs) pool->free(h);
    }
    EXPECT_GT(errors, 0u);
    for (std::uint64_t i = 0; i < zc.pages; ++i) z.discard(i);
    pool->validate();
    zr.value().reset();
    pool.reset();
    test::expect_all_returned(*a);  // the arena and the metadata region whole again
  }
}

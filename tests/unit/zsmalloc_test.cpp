// Unit tests: zsmalloc classes, objects, straddling, huge objects, compaction, page migration,
// the compressed page store.
#include <memdesc/zram.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "test_support.hpp"

namespace memdesc {
namespace {

using test::make_arena;

struct Obj {
  ZsHandle h;
  std::size_t size;
  std::uint64_t tag;
};

// Writes a pattern that depends on tag into the object's first `size` bytes.
void put(ZsPool& p, const Obj& o) {
  std::vector<unsigned char> b(o.size);
  for (std::size_t i = 0; i < o.size; ++i) b[i] = static_cast<unsigned char>(test::pattern(o.tag, i / 8) >> (i % 8 * 8));
  p.write(o.h, b.data(), o.size);
}

// Reads the object back; true when every byte holds the pattern.
bool intact(ZsPool& p, const Obj& o) {
  std::vector<unsigned char> copy(o.size);
  auto* m = static_cast<const unsigned char*>(p.read_begin(o.h, copy.data(), o.size));
  bool ok = true;
  for (std::size_t i = 0; i < o.size && ok; ++i)
    ok = m[i] == static_cast<unsigned char>(test::pattern(o.tag, i / 8) >> (i % 8 * 8));
  p.read_end(o.h, m);
  return ok;
}

std::unique_ptr<ZsPool> make_pool(Arena& a, unsigned chain = kZsDefaultChain) {
  ZsPoolConfig c;
  c.name = "test";
  c.chain = chain;
  auto r = a.zs_create_pool(c);
  EXPECT_TRUE(r.ok());
  return std::move(r.value());
}

Obj alloc(ZsPool& p, std::size_t size, std::uint64_t tag) {
  auto r = p.malloc(size);
  EXPECT_TRUE(r.ok()) << describe(r.error());
  Obj o{r.value(), size, tag};
  put(p, o);
  return o;
}

TEST(ZsClasses, MatchTheReferenceTable) {
  // Documentation/mm/zsmalloc.rst: distinct classes and huge watermark per chain size.
  const struct { unsigned chain, classes, watermark; } want[] = {
      {4, 69, 3264}, {5, 86, 3408}, {8, 123, 3632}, {12, 164, 3776}, {16, 191, 3840}};
  for (auto w : want) {
    ZsClassTable t = zs_class_table(w.chain);
    EXPECT_EQ(t.classes.size(), w.classes) << "chain " << w.chain;
    EXPECT_EQ(t.huge_watermark, w.watermark) << "chain " << w.chain;
    EXPECT_EQ(t.huge_class_size, w.watermark - (kZsHeaderSize - 1));
    // Every nominal index is served exactly once, and classes grow.
    unsigned next = 0;
    for (const auto& c : t.classes) {
      EXPECT_EQ(c.first_index, next);
      next = c.index + 1;
      EXPECT_EQ(c.size, std::min<unsigned>(kZsMinAllocSize + kZsSizeClassDelta * c.index, 4096));
      EXPECT_EQ(c.objs_per_zspage, c.pages_per_zspage * kPageSize / c.size);
      EXPECT_LE(c.pages_per_zspage, w.chain);
      EXPECT_EQ(c.huge, c.size > w.watermark);
    }
    EXPECT_EQ(next, kZsSizeClasses);
  }
  // The documentation's example: 1568 bytes with chain 5 stores 13 objects in 5 pages.
  ZsClassTable t5 = zs_class_table(5);
  auto it = std::find_if(t5.classes.begin(), t5.classes.end(), [](const ZsClassGeometry& c) { return c.index == (1568 - 32) / 16; });
  ASSERT_NE(it, t5.classes.end());
  EXPECT_EQ(it->pages_per_zspage, 5u);
  EXPECT_EQ(it->objs_per_zspage, 13u);
}

TEST(ZsPool, RejectsBadRequestsAndConfigs) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  ZsPoolConfig bad;
  bad.chain = 3;
  auto r = a->zs_create_pool(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_config);
  auto p = make_pool(*a);
  auto z = p->malloc(0);
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.error().code, Errc::invalid_request);
  auto big = p->malloc(4097);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::invalid_request);
  EXPECT_EQ(p->total_pages(), 0u);
}

TEST(ZsPool, EverySizeRoundTrips) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::vector<Obj> objs;
  for (std::size_t s = 1; s <= kZsMaxAllocSize; s += 13) objs.push_back(alloc(*p, s, s));
  objs.push_back(alloc(*p, kZsMaxAllocSize, 4096));
  for (const Obj& o : objs) {
    EXPECT_TRUE(intact(*p, o)) << "size " << o.size;
    EXPECT_GE(p->object_capacity(o.h), o.size);
  }
  p->validate();
  ZsPoolStats s = p->stats();
  EXPECT_EQ(s.objects, objs.size());
  for (const Obj& o : objs) p->free(o.h);
  p->validate();
  EXPECT_EQ(p->total_pages(), 0u);
  EXPECT_EQ(p->stats().objects, 0u);
}

TEST(ZsPool, StraddlingObjectsReadThroughTheCopy) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  // 1192 bytes + header: class 1200, 17 objects in 5 pages; 4 of them straddle.
  std::vector<Obj> objs;
  for (int i = 0; i < 64; ++i) objs.push_back(alloc(*p, 1192, 100 + i));
  unsigned copied = 0, direct = 0;
  for (const Obj& o : objs) {
    std::vector<char> buf(o.size);
    const void* m = p->read_begin(o.h, buf.data(), o.size);
    (m == buf.data() ? copied : direct)++;
    p->read_end(o.h, m);
    EXPECT_TRUE(intact(*p, o));
  }
  EXPECT_GT(copied, 0u) << "no object straddled two pages";
  EXPECT_GT(direct, 0u);
  bool tail_only = false;
  for (const ZsPageInfo& pi : p->pages()) tail_only |= pi.straddle_in;
  EXPECT_TRUE(tail_only);
  p->validate();
  for (const Obj& o : objs) p->free(o.h);
}

TEST(ZsPool, HugeObjectsTakeAPageEach) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::size_t huge = p->huge_class_size();
  EXPECT_EQ(huge, 3625u);
  Obj below = alloc(*p, huge - 1, 1);
  std::uint64_t before = p->total_pages();
  Obj h1 = alloc(*p, huge, 2), h2 = alloc(*p, 4096, 3);
  EXPECT_EQ(p->total_pages(), before + 2);
  EXPECT_EQ(p->object_capacity(h2.h), 4096u);
  EXPECT_TRUE(intact(*p, below));
  EXPECT_TRUE(intact(*p, h1));
  EXPECT_TRUE(intact(*p, h2));
  auto cs = p->class_stats();
  EXPECT_EQ(std::count_if(cs.begin(), cs.end(), [](const ZsClassStats& c) { return c.huge && c.obj_used == 2; }), 1);
  p->validate();
  for (const Obj* o : {&below, &h1, &h2}) p->free(o->h);
  EXPECT_EQ(p->total_pages(), 0u);
}

TEST(ZsPool, CompactionPacksAndKeepsContents) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::mt19937_64 rng(7);
  std::vector<Obj> objs;
  for (int i = 0; i < 6000; ++i) objs.push_back(alloc(*p, 64 + rng() % 2500, i));
  std::shuffle(objs.begin(), objs.end(), rng);
  for (std::size_t i = 0; i < objs.size() * 3 / 4; ++i) p->free(objs[i].h);
  objs.erase(objs.begin(), objs.begin() + static_cast<long>(objs.size() * 3 / 4));
  p->validate();
  std::uint64_t freeable = p->can_compact(), before = p->total_pages();
  EXPECT_GT(freeable, before / 4);
  std::uint64_t freed = p->compact();
  EXPECT_EQ(freed, freeable);
  EXPECT_EQ(p->total_pages(), before - freed);
  EXPECT_EQ(p->can_compact(), 0u);
  ZsPoolStats s = p->stats();
  EXPECT_EQ(s.pages_compacted, freed);
  EXPECT_GT(s.objects_moved, 0u);
  p->validate();
  for (const Obj& o : objs) EXPECT_TRUE(intact(*p, o));
  for (const Obj& o : objs) p->free(o.h);
  EXPECT_EQ(p->total_pages(), 0u);
}

TEST(ZsPool, CompactionSkipsAZspageAReaderHolds) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::vector<Obj> objs;
  for (int i = 0; i < 400; ++i) objs.push_back(alloc(*p, 300, i));  // class 320: 64 per 5-page zspage
  // Keep one object of every 8: sparse zspages everywhere.
  std::vector<Obj> kept;
  for (std::size_t i = 0; i < objs.size(); ++i) {
    if (i % 8 == 0) kept.push_back(objs[i]);
    else p->free(objs[i].h);
  }
  ASSERT_GT(p->can_compact(), 0u);
  // A reader holding an object of every zspage stops compaction (writers only try-lock).
  std::vector<std::pair<const Obj*, const void*>> held;
  std::vector<std::vector<char>> bufs(kept.size(), std::vector<char>(300));
  for (std::size_t i = 0; i < kept.size(); ++i) held.push_back({&kept[i], p->read_begin(kept[i].h, bufs[i].data(), 300)});
  EXPECT_EQ(p->compact(), 0u);
  for (auto& [o, m] : held) p->read_end(o->h, m);
  EXPECT_GT(p->compact(), 0u);
  p->validate();
  for (const Obj& o : kept) {
    EXPECT_TRUE(intact(*p, o));
    p->free(o.h);
  }
}

// Migrates every page that matches `pick`, checks contents after each.
unsigned migrate_matching(ZsPool& p, const std::vector<Obj>& objs, bool (*pick)(const ZsPageInfo&)) {
  unsigned n = 0;
  for (const ZsPageInfo& pi : p.pages()) {
    if (!pick(pi)) continue;
    EXPECT_TRUE(p.isolate_page(pi.addr));
    EXPECT_EQ(p.migrate_page(pi.addr), ZsMigrateResult::migrated);
    ++n;
  }
  p.validate();
  for (const Obj& o : objs) EXPECT_TRUE(intact(p, o));
  for (const ZsPageInfo& pi : p.pages()) EXPECT_FALSE(pi.isolated);
  return n;
}

TEST(ZsMigration, FirstLastMiddleTailOnlyAndHugePages) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::vector<Obj> objs;
  // 1192 bytes + header = class 1200 (17 objects in 5 pages). A fresh pool fills a zspage's slots in order, so slot
  // i % objs of zspage i / objs. Freeing every object that starts in an odd page leaves those
  // pages holding only the tail of an object begun in the page before.
  const ZsClassTable& t = p->class_table();
  auto cls = *std::find_if(t.classes.begin(), t.classes.end(), [](const ZsClassGeometry& c) { return c.size >= 1200; });
  ASSERT_EQ(cls.size, 1200u);
  std::vector<Obj> all;
  for (unsigned i = 0; i < 3 * cls.objs_per_zspage; ++i) all.push_back(alloc(*p, 1192, i));
  for (unsigned i = 0; i < all.size(); ++i) {
    if ((i % cls.objs_per_zspage) * cls.size / kPageSize % 2 == 1) p->free(all[i].h);
    else objs.push_back(all[i]);
  }
  for (int i = 0; i < 10; ++i) objs.push_back(alloc(*p, 3900, 1000 + i));  // huge
  EXPECT_GT(migrate_matching(*p, objs, [](const ZsPageInfo& i) { return i.position == 0 && i.chain_pages > 1; }), 0u);
  EXPECT_GT(migrate_matching(*p, objs, [](const ZsPageInfo& i) { return i.position + 1 == i.chain_pages && i.chain_pages > 1; }), 0u);
  EXPECT_GT(migrate_matching(*p, objs, [](const ZsPageInfo& i) { return i.position > 0 && i.position + 1 < i.chain_pages; }), 0u);
  EXPECT_GT(migrate_matching(*p, objs, [](const ZsPageInfo& i) { return i.objects_starting == 0 && i.straddle_in; }), 0u);
  EXPECT_GT(migrate_matching(*p, objs, [](const ZsPageInfo& i) { return i.chain_pages == 1 && i.class_size == 4096; }), 0u);
  EXPECT_GT(p->stats().pages_migrated, 0u);
  for (const Obj& o : objs) p->free(o.h);
  EXPECT_EQ(p->total_pages(), 0u);
}

TEST(ZsMigration, BusyNotIsolatedPutbackAndDeferredFree) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  Obj o = alloc(*p, 500, 1);
  void* page = p->pages().front().addr;
  EXPECT_EQ(p->migrate_page(page), ZsMigrateResult::not_isolated);
  ASSERT_TRUE(p->isolate_page(page));
  EXPECT_FALSE(p->isolate_page(page));  // already isolated
  std::vector<char> buf(500);
  const void* m = p->read_begin(o.h, buf.data(), 500);
  EXPECT_EQ(p->migrate_page(page), ZsMigrateResult::busy);  // a reader pins the zspage
  p->read_end(o.h, m);
  // The last object goes while the page is isolated: the zspage waits for the putback.
  std::uint64_t pages = p->total_pages();
  p->free(o.h);
  EXPECT_EQ(p->total_pages(), pages);
  p->validate();
  p->putback_page(page);
  EXPECT_EQ(p->total_pages(), 0u);
  EXPECT_FALSE(p->isolate_page(page));  // no longer the pool's
  void* other = a->alloc_pages(0);
  EXPECT_FALSE(p->isolate_page(other));  // not a zspage page
  a->free_pages(other);
}

TEST(ZsPool, DestroyFreesEverythingStillInThePool) {
  auto a = make_arena(std::size_t{64} << 20, 10, 25, /*thread_cache=*/false);
  ASSERT_TRUE(a);
  std::uint64_t free_before = a->info().free_pages;
  {
    auto p = make_pool(*a);
    for (int i = 0; i < 2000; ++i) alloc(*p, 1 + i % 4096, i);
    EXPECT_GT(p->total_pages(), 100u);
  }
  a->shrink();
  EXPECT_EQ(a->info().free_pages, free_before);
  a->validate();
}

TEST(ZsPool, OutOfMemoryLeavesNothingBehind) {
  auto a = make_arena(std::size_t{4} << 20, 4, 50, /*thread_cache=*/false);
  ASSERT_TRUE(a);
  auto p = make_pool(*a);
  std::vector<ZsHandle> hs;
  Error last;
  for (;;) {
    auto r = p->malloc(3000);
    if (!r.ok()) {
      last = r.error();
      break;
    }
    hs.push_back(r.value());
  }
  EXPECT_EQ(last.code, Errc::out_of_memory);
  p->validate();
  for (ZsHandle h : hs) p->free(h);
  EXPECT_EQ(p->total_pages(), 0u);
}

// ---- the compressed page store ---------------------------------------------------------------

void text_page(unsigned char* b, unsigned seed) {
  static const char* words[] = {"memory ", "descriptor ", "folio ", "slab ", "zspage ", "handle ", "compaction "};
  std::size_t n = 0;
  for (unsigned i = seed; n < kPageSize; ++i) {
    const char* w = words[(i * 2654435761u) % 7];
    for (; *w && n < kPageSize; ++w) b[n++] = static_cast<unsigned char>(*w);
  }
}

class ZramTest : public ::testing::TestWithParam<ZramAlgo> {};

TEST_P(ZramTest, RoundTripsTextZeroAndRandomPages) {
  auto a = make_arena();
  ASSERT_TRUE(a);
  ZramConfig cfg;
  cfg.pages = 600;
  cfg.algo = GetParam();
  auto z = ZramStore::create(make_pool(*a), cfg);
  ASSERT_TRUE(z.ok());
  ZramStore& s = *z.value();
  std::mt19937_64 rng(3);
  std::vector<std::vector<unsigned char>> pages(cfg.pages, std::vector<unsigned char>(kPageSize));
  for (unsigned i = 0; i < cfg.pages; ++i) {
    auto& b = pages[i];
    if (i % 5 == 0) std::fill(b.begin(), b.end(), 0);                     // same-filled
    else if (i % 5 == 1) for (auto& c : b) c = static_cast<unsigned char>(rng());  // incompressible
    else text_page(b.data(), i);
    ASSERT_FALSE(s.store(i, b.data()));
  }
  ZramStats st = s.stats();
  EXPECT_EQ(st.pages_stored, cfg.pages);
  EXPECT_EQ(st.orig_data_size, cfg.pages * kPageSize);
  EXPECT_EQ(st.same_pages, cfg.pages / 5);
  EXPECT_EQ(st.huge_pages, cfg.pages / 5);
  EXPECT_LT(st.compr_data_size, st.orig_data_size / 2);
  EXPECT_GE(st.mem_used_total, st.compr_data_size);
  // Overwrite and discard some, compact, read everything back.
  for (unsigned i = 0; i < cfg.pages; i += 3) {
    text_page(pages[i].data(), i * 7 + 1);
    ASSERT_FALSE(s.store(i, pages[i].data()));
  }
  for (unsigned i = 2; i < cfg.pages; i += 4) {
    s.discard(i);
    std::fill(pages[i].begin(), pages[i].end(), 0);
  }
  s.compact();
  s.pool().validate();
  std::vector<unsigned char> out(kPageSize);
  for (unsigned i = 0; i < cfg.pages; ++i) {
    ASSERT_FALSE(s.load(i, out.data()));
    ASSERT_EQ(std::memcmp(out.data(), pages[i].data(), kPageSize), 0) << "page " << i;
  }
  EXPECT_EQ(s.load(cfg.pages, out.data()).code, Errc::invalid_request);
  EXPECT_EQ(s.store(cfg.pages, out.data()).code, Errc::invalid_request);
}

INSTANTIATE_TEST_SUITE_P(Algos, ZramTest, ::testing::Values(ZramAlgo::lz4, ZramAlgo::zstd),
                         [](const auto& i) { return std::string(zram_algo_name(i.param)); });

// A page count no entry table can hold, or no memory can hold, is an error, not an exception.
TEST(Zram, CreateReturnsErrorsForImpossiblePageCounts) {
  auto a = test::make_arena(16 << 20);
  // (Under the sanitizers, whose allocators abort on a request they cannot serve, only counts
  // refused before any allocation.)
#if defined(MEMDESC_SANITIZED)
  constexpr bool kSanitizerAllocator = true;
#else
  constexpr bool kSanitizerAllocator = false;
#endif
  for (std::uint64_t pages : {~std::uint64_t{0}, std::uint64_t{1} << 62, kSanitizerAllocator ? ~std::uint64_t{0} : std::uint64_t{1} << 50}) {
    ZramConfig cfg;
    cfg.pages = pages;
    Result<std::unique_ptr<ZramStore>> r = [&] {
      try {
        return ZramStore::create(std::move(a->zs_create_pool({}).value()), cfg);
      } catch (...) {
        ADD_FAILURE() << "ZramStore::create threw for " << pages << " pages";
        return Result<std::unique_ptr<ZramStore>>(Error{Errc::invalid_config, 0, "threw"});
      }
    }();
    ASSERT_FALSE(r.ok()) << pages;
    EXPECT_TRUE(r.error().code == Errc::invalid_config || r.error().code == Errc::out_of_memory) << describe(r.error());
  }
  ZramConfig ok;
  ok.pages = 1000;
  auto z = ZramStore::create(std::move(a->zs_create_pool({}).value()), ok);
  ASSERT_TRUE(z.ok());
  std::vector<char> page(kPageSize, 7), back(kPageSize);
  ASSERT_FALSE(z.value()->store(999, page.data()));
  ASSERT_FALSE(z.value()->load(999, back.data()));
  EXPECT_EQ(page, back);
}

}  // namespace
}  // namespace memdesc

// Death tests: every misuse of the page API is a fatal report with a precise message.
#include <gtest/gtest.h>

#include "base/lock_rank.hpp"
#include "core/memmap.hpp"
#include "page/page_alloc.hpp"
#include "test_support.hpp"

using namespace memdesc;

class MisuseDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(MisuseDeath, DoubleFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->alloc_pages(1);
        a->free_pages(p);
        a->free_pages(p);
      },
      "memdesc: double free: free_pages\\(0x[0-9a-f]+\\): pfn [0-9]+ is already free \\(word: Buddy\\(dirty\\)\\)");
}

TEST_F(MisuseDeath, DoubleFreeWithoutCache) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20, 10, 0, false);
        void* p = a->alloc_pages(5);
        a->free_pages(p);
        a->free_pages(p);
      },
      "memdesc: double free: free_pages\\(0x[0-9a-f]+\\): pfn 0 is already free");
}

TEST_F(MisuseDeath, NeverAllocated) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->free_pages(a->pfn_to_virt(100));
      },
      "memdesc: double free: free_pages\\(0x[0-9a-f]+\\): pfn 100 is already free \\(word: Buddy\\(clean\\)\\)");
}

TEST_F(MisuseDeath, ForeignPointer) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        int x;
        a->free_pages(&x);
      },
      "memdesc: invalid pointer: free_pages\\(0x[0-9a-f]+\\): address is outside the arena \\[0x[0-9a-f]+, 0x[0-9a-f]+\\)");
}

TEST_F(MisuseDeath, InsideABlock) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->alloc_pages(2));
        a->free_pages(p + 2 * 4096);
      },
      "memdesc: invalid pointer: free_pages\\(0x[0-9a-f]+\\): address is inside the order-2 block that starts at 0x");
}

TEST_F(MisuseDeath, NotPageAligned) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->alloc_pages(0));
        a->free_pages(p + 8);
      },
      "memdesc: invalid pointer: free_pages\\(0x[0-9a-f]+\\): address is inside the order-0 block");
}

TEST_F(MisuseDeath, WrongTypeForFreePages) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->alloc_pages_desc(1, MemdescWord::misc(MiscSubtype::KmallocLarge, 1));
        a->free_pages(p);
      },
      "memdesc: wrong type: free_pages\\(0x[0-9a-f]+\\): expected Misc\\(pages\\) \\(a block from alloc_pages\\), "
      "page word is Misc\\(kmalloc_large, order=1\\)");
}

TEST_F(MisuseDeath, WrongDescriptorWord) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        alignas(16) static char d1[16];
        alignas(16) static char d2[16];
        void* p = a->alloc_pages_desc(0, MemdescWord::describe(MemdescType::Movable, d1, 0));
        a->free_pages_desc(p, MemdescWord::describe(MemdescType::Movable, d2, 0));
      },
      "memdesc: wrong type: free_pages_desc\\(0x[0-9a-f]+\\): expected Movable\\(desc=0x[0-9a-f]+, order=0, aux=0\\), "
      "page word is Movable");
}

TEST_F(MisuseDeath, DescriptorPageFreedAsPlainPages) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        alignas(16) static char d[16];
        void* p = a->alloc_pages_desc(0, MemdescWord::describe(MemdescType::Movable, d, 0));
        a->free_pages(p);
      },
      "memdesc: wrong type: free_pages.*page word is Movable\\(desc=");
}

// MEMDESC-OWNED: a word of a type the arena's layers own would make them trust a forged
// pointer or index (a Slab word with cache id 5000 sent the next kfree past the cache table).
TEST_F(MisuseDeath, ForgedWordsOfOwnedTypesAreRefused) {
  alignas(16) static char d[64];
  const MemdescWord forged[] = {
      MemdescWord::describe(MemdescType::Slab, d, 0, 5000), MemdescWord::describe(MemdescType::Slab, d, 0, 3),
      MemdescWord::describe(MemdescType::Anon, d, 0),       MemdescWord::describe(MemdescType::File, d, 0),
      MemdescWord::describe(MemdescType::ZPDesc, d, 0, 1),  MemdescWord::describe(MemdescType::Frag, d, 0),
      MemdescWord::describe(MemdescType::PageTable, d, 0),  MemdescWord::misc(MiscSubtype::Migrating, 0),
  };
  for (MemdescWord w : forged)
    EXPECT_DEATH(
        {
          auto a = test::make_arena(16 << 20);
          void* p = a->alloc_pages_desc(0, w);
          a->kfree(p);
        },
        "memdesc: bad argument: alloc_pages_desc: word .* is of a type the arena's own layers own \\(MEMDESC-OWNED\\)")
        << to_string(w);
}

TEST_F(MisuseDeath, DescFreeWithTheWrongOrder) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->alloc_pages_desc(2, MemdescWord::misc(MiscSubtype::KmallocLarge, 2));
        a->free_pages_desc(p, MemdescWord::misc(MiscSubtype::KmallocLarge, 1));
      },
      "memdesc: wrong type: free_pages_desc\\(0x[0-9a-f]+\\): expected Misc\\(kmalloc_large, order=1\\), "
      "page word is Misc\\(kmalloc_large, order=2\\)");
}

TEST_F(MisuseDeath, DescWordOrderMismatch) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->alloc_pages_desc(3, MemdescWord::misc(MiscSubtype::KmallocLarge, 2));
      },
      "memdesc: bad argument: alloc_pages_desc: word Misc\\(kmalloc_large, order=2\\) cannot describe an order-3");
}

TEST_F(MisuseDeath, ValidateFindsACorruptFreeWord) {
  EXPECT_DEATH(
      {
        // The page layer on its own memmap (no per-thread caches), as an Arena builds it.
        auto mm = core::Memmap::create(16 << 20, 10, 0);
        auto pa = page::PageAllocator::create(*mm.value(), {.thread_cache = false});
        // Corrupt an interior page of a free max-order block.
        mm.value()->set_word(5, MemdescWord::misc(MiscSubtype::Pages, 0));
        pa.value()->validate();
      },
      "memdesc: invariant BUDDY-WORD violated: zone Normal: interior page pfn 5 of free block 0 has word Misc\\(pages");
}

TEST_F(MisuseDeath, LockOrderInversion) {
  if (!kChecked) GTEST_SKIP() << "the lock witness runs in checked builds";
  EXPECT_DEATH(
      {
        SpinLock zone{LockRank::Zone};
        LockGuard g1(zone);
        LockGuard g2(page::cache_registry_lock());
      },
      "memdesc: lock order: taking CacheRegistry while holding Zone");
}

TEST_F(MisuseDeath, ValueOfAFailedResult) {
  EXPECT_DEATH(
      {
        auto r = Arena::create({.size = 0});
        (void)r.value();
      },
      "memdesc: bad argument: Result::value: the result holds an error: invalid configuration: arena size is zero");
}

TEST(Result, HoldsAValueThatNeedNotBeDefaultConstructible) {
  struct NoDefault {
    explicit NoDefault(int x) : v(x) {}
    int v;
  };
  Result<NoDefault> r(NoDefault(7));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r->v, 7);
  EXPECT_EQ(r.error().code, Errc::ok);
  Result<NoDefault> e(Error{Errc::out_of_memory, 0, "x"});
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::out_of_memory);
}

// Each arena's caches and folios are its own: one used through another arena is reported (a
// cache of A used through B built a slab in B owned by A's cache; a folio of A put through B
// dropped A's folio and blamed one of B's pages).
TEST_F(MisuseDeath, ACacheOfAnotherArena) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto b = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("of-a", 64).value();
        b->kmem_cache_alloc(c);
      },
      "memdesc: bad argument: kmem_cache_alloc: the cache belongs to another arena");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto b = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("of-a", 64).value();
        void* p = a->kmem_cache_alloc(c);
        b->kmem_cache_free(c, p);
      },
      "memdesc: bad argument: kmem_cache_free: the cache belongs to another arena");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto b = test::make_arena(16 << 20);
        b->kmem_cache_destroy(a->kmem_cache_create("of-a", 64).value());
      },
      "memdesc: bad argument: kmem_cache_destroy: the cache belongs to another arena");
}

TEST_F(MisuseDeath, AFolioOfAnotherArena) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto b = test::make_arena(16 << 20);
        b->folio_put(a->folio_alloc(0));
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): not a folio: the address is outside the arena's metadata "
      "region \\(a folio of another arena\\?\\)");
}

// Death tests: every misuse of kmalloc / kmem_cache is a fatal report naming the cache and
// the address.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "base/asan.hpp"
#include "base/compiler.hpp"
#include "test_support.hpp"

using namespace memdesc;

class SlabDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(SlabDeath, KfreeTwice) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(50);
        a->kfree(p);
        a->kfree(p);
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache kmalloc-64: (double free \\(object is already free\\)|"
      "object is not allocated \\(double free, or never allocated\\))");
}

TEST_F(SlabDeath, KfreeInsideAnObject) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->kmalloc(100));
        a->kfree(p + 8);
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache kmalloc-128: not the start of an object");
}

TEST_F(SlabDeath, KfreeForeignPointer) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        int x;
        a->kfree(&x);
      },
      "memdesc: invalid pointer: kfree\\(0x[0-9a-f]+\\): address is outside the arena");
}

TEST_F(SlabDeath, KfreeOfPlainPages) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->kfree(a->alloc_pages(0));
      },
      "memdesc: wrong type: kfree\\(0x[0-9a-f]+\\): expected a slab object or a kmalloc_large block, page word is "
      "Misc\\(pages, order=0\\)");
}

TEST_F(SlabDeath, KfreeInsideKmallocLarge) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->kmalloc(20000));
        a->kfree(p + 4096);
      },
      "memdesc: invalid pointer: kfree\\(0x[0-9a-f]+\\): address is inside the order-3 block");
}

TEST_F(SlabDeath, KfreeOfAFreePage) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->kfree(a->pfn_to_virt(1000));
      },
      "memdesc: double free: kfree\\(0x[0-9a-f]+\\): pfn 1000 is already free");
}

TEST_F(SlabDeath, WrongCache) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("mine", 64).value();
        void* p = a->kmalloc(64);
        a->kmem_cache_free(c, p);
      },
      "memdesc: invalid object: kmem_cache_free\\(0x[0-9a-f]+\\): cache mine: object belongs to cache kmalloc-64");
}

TEST_F(SlabDeath, NeverAllocated) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        // kmalloc-8 slabs have 512 slots, a refill takes 64: slot 400 was never handed out.
        auto base = reinterpret_cast<std::uintptr_t>(a->kmalloc(8)) & ~std::uintptr_t{4095};
        a->kfree(reinterpret_cast<void*>(base + 8 * 400));
        a->drain_thread_cache();  // fast builds find it when the magazine is flushed
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache kmalloc-8: (object was never allocated|"
      "object is not allocated \\(double free, or never allocated\\))");
}

TEST_F(SlabDeath, DestroyWithLiveObjects) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("leaky", 32).value();
        a->kmem_cache_alloc(c);
        a->kmem_cache_free(c, a->kmem_cache_alloc(c));
        a->kmem_cache_destroy(c);
      },
      "memdesc: leak: kmem_cache_destroy\\(leaky\\): 1 object still allocated");
}

TEST_F(SlabDeath, DoubleFreeOfAnObjectBackOnItsSlab) {
  // Fast builds find it when the second copy reaches the slab (MAG-TOP at the freelist head);
  // checked builds at the second kfree.
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(32);
        a->kfree(p);
        a->drain_thread_cache();  // p is now on its slab's freelist
        a->kfree(p);
        a->drain_thread_cache();
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache kmalloc-32: (object is not allocated|double free)");
}

TEST_F(SlabDeath, DoubleFreeOfTheLastFreedObjectOfAUserCache) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("twice", 48).value();
        void* p = a->kmem_cache_alloc(c);
        void* q = a->kmem_cache_alloc(c);
        a->kmem_cache_free(c, q);
        a->kmem_cache_free(c, p);
        a->kmem_cache_free(c, p);
      },
      "memdesc: invalid object: kmem_cache_free\\(0x[0-9a-f]+\\): cache twice: (double free|object is not allocated)");
}

// In ASan builds the red zone is poisoned too: ASan catches the write itself.
constexpr const char* kRedZoneReport = asan::kOn ? "AddressSanitizer: use-after-poison"
                                                 : "memdesc: invalid object: kmem_cache_free\\(0x[0-9a-f]+\\): cache rz(37)?: red zone overwritten";

TEST_F(SlabDeath, RedZone) {
  if (!kChecked) GTEST_SKIP() << "red zones are checked in checked builds";
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("rz", 40, 0, SLAB_RED_ZONE).value();
        char* p = static_cast<char*>(a->kmem_cache_alloc(c));
        p[40] = 1;  // one byte past the end
        a->kmem_cache_free(c, p);
      },
      kRedZoneReport);
}

// The red zone starts at the object's end, not at the next multiple of 8: an overflow of 1..7
// bytes of a 37-byte object is caught too.
TEST_F(SlabDeath, RedZoneCatchesOverflowsOfOneToSevenBytes) {
  if (!kChecked) GTEST_SKIP() << "red zones are checked in checked builds";
  for (int over = 1; over <= 7; ++over)
    EXPECT_DEATH(
        {
          auto a = test::make_arena(16 << 20);
          KmemCache* c = a->kmem_cache_create("rz37", 37, 0, SLAB_RED_ZONE).value();
          char* p = static_cast<char*>(a->kmem_cache_alloc(c));
          std::memset(p, 0, 37 + over);
          a->kmem_cache_free(c, p);
        },
        kRedZoneReport)
        << over << " bytes past the end";
}

TEST_F(SlabDeath, Poison) {
  if (!kChecked) GTEST_SKIP() << "poison is checked in checked builds";
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("poisoned", 64, 0, SLAB_POISON).value();
        char* p = static_cast<char*>(a->kmem_cache_alloc(c));
        a->kmem_cache_free(c, p);
        p[20] = 1;  // write after free
        a->kmem_cache_alloc(c);
      },
      asan::kOn ? "AddressSanitizer: use-after-poison"  // ASan sees the write itself
                : "memdesc: invalid object: kmem_cache_alloc\\(0x[0-9a-f]+\\): cache poisoned: poison overwritten");
}

// A destroyed cache stays a shell until its arena goes: every later use is a precise report.
TEST_F(SlabDeath, UseOfADestroyedCache) {
  auto use = [](int how) {
    auto a = test::make_arena(16 << 20);
    KmemCache* c = a->kmem_cache_create("gone", 48).value();
    void* p = a->kmem_cache_alloc(c);
    a->kmem_cache_free(c, p);
    a->kmem_cache_destroy(c);
    KmemCache* again = a->kmem_cache_create("new", 48).value();  // may take the old id
    (void)again;
    if (how == 0) (void)a->kmem_cache_alloc(c);
    if (how == 1) a->kmem_cache_free(c, a->kmalloc(48));
    if (how == 2) a->kmem_cache_destroy(c);
    if (how == 3) (void)a->kmem_cache_shrink(c);
  };
  EXPECT_DEATH(use(0), "memdesc: bad argument: kmem_cache_alloc: cache gone was destroyed \\(kmem_cache_destroy\\)");
  EXPECT_DEATH(use(1), "memdesc: bad argument: kmem_cache_free: cache gone was destroyed");
  EXPECT_DEATH(use(2), "memdesc: bad argument: kmem_cache_destroy: cache gone was destroyed");
  EXPECT_DEATH(use(3), "memdesc: bad argument: kmem_cache_shrink: cache gone was destroyed");
}

// SLAB-INTERNAL: kfree and ksize cannot reach the arena's own descriptors or handles. kfree of
// a folio used to free the live descriptor, which the next folio allocation handed out again.
TEST(SlabInternalDeath, KfreeOfAFolioDescriptor) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        a->kfree(f);
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache folio: an object of an internal cache");
}

TEST(SlabInternalDeath, KfreeOfAZsmallocHandle) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto pool = a->zs_create_pool({}).value();
        ZsHandle h = pool->malloc(100).value();
        a->kfree(reinterpret_cast<void*>(h));
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache zs_handle: an object of an internal cache");
}

TEST(SlabInternalDeath, KsizeOfAFolioAndOfASlabDescriptor) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(1);
        (void)a->ksize(f);
      },
      "memdesc: invalid object: ksize\\(0x[0-9a-f]+\\): cache folio_large: an object of an internal cache");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(64);
        (void)a->ksize(a->virt_to_memdesc(p)->desc());  // the kmalloc-64 slab's descriptor
      },
      "memdesc: invalid object: ksize\\(0x[0-9a-f]+\\): cache slab_descriptor: an object of an internal cache");
}

TEST(SlabInternalDeath, KsizeOfAnInteriorPointer) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->kmalloc(64));
        (void)a->ksize(p + 8);
      },
      "memdesc: invalid object: ksize\\(0x[0-9a-f]+\\): cache kmalloc-64: not the start of an object");
}

// What each build promises for a double free that is not on top of the thread's magazine
// (kfree(a); kfree(b); kfree(a)): checked builds (the live set) and hardened builds (the free
// mark, SLAB-FREE-MARK) report it; a plain release build does not — the object would be handed
// out twice — which is what the hardened preset is for (docs/SLAB.md, "Hardening").
TEST_F(SlabDeath, DoubleFreeNotOnTopOfTheMagazine) {
  if (!kChecked && !kHardened) GTEST_SKIP() << "a plain release build does not detect it: build the hardened preset";
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* x = a->kmalloc(64);
        void* y = a->kmalloc(64);
        a->kfree(x);
        a->kfree(y);
        a->kfree(x);
      },
      "memdesc: invalid object: kfree\\(0x[0-9a-f]+\\): cache kmalloc-64: (double free|object is not allocated)");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("hard", 100).value();
        std::vector<void*> v;
        for (int i = 0; i < 1000; ++i) v.push_back(a->kmem_cache_alloc(c));
        for (void* p : v) a->kmem_cache_free(c, p);  // through full magazines, the depot, the slabs
        a->kmem_cache_free(c, v[10]);
      },
      "memdesc: invalid object: kmem_cache_free\\(0x[0-9a-f]+\\): cache hard: (double free|object is not allocated)");
}

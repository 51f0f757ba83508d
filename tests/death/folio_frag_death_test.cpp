// Death tests: misuse of folios and page fragments is a fatal report naming the operation,
// the descriptor or address, and what is wrong.
#include <gtest/gtest.h>

#include "base/compiler.hpp"
#include "test_support.hpp"

using namespace memdesc;

class FolioFragDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(FolioFragDeath, FolioPutOnceTooOften) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        Folio* keep = a->folio_alloc(0);  // keeps the descriptor slab alive
        a->folio_put(f);
        a->folio_put(f);
        a->folio_put(keep);
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): refcount was already 0");
}

TEST_F(FolioFragDeath, FolioFreedWhileLocked) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(1);
        folio_lock(f);
        a->folio_put(f);
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): last reference dropped while the folio is locked");
}

TEST_F(FolioFragDeath, FolioUnlockWhenUnlocked) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        folio_unlock(f);
      },
      "memdesc: bad descriptor: folio_unlock\\(folio 0x[0-9a-f]+\\): the folio is not locked");
}

TEST_F(FolioFragDeath, FolioGetOnAFreeFolio) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        Folio* keep = a->folio_alloc(0);
        a->folio_put(f);
        folio_get(f);
        a->folio_put(keep);
      },
      "memdesc: bad descriptor: folio_get\\(folio 0x[0-9a-f]+\\): reference taken on a folio whose refcount was 0");
}

TEST_F(FolioFragDeath, FolioPagesFreedAsPlainPages) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        a->free_pages(a->folio_address(f));
      },
      "memdesc: wrong type: free_pages\\(0x[0-9a-f]+\\): expected Misc\\(pages\\) \\(a block from alloc_pages\\), "
      "page word is Anon");
}

TEST_F(FolioFragDeath, PageFragFreeTwice) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        void* p = nc.alloc(128);
        nc.drain();            // the cache lets the block go: p is its only reference
        a->page_frag_free(p);  // frees the block
        a->page_frag_free(p);
      },
      "memdesc: double free: page_frag_free\\(0x[0-9a-f]+\\): pfn [0-9]+ is already free");
}

TEST_F(FolioFragDeath, PageFragFreeOfASlabObject) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->page_frag_free(a->kmalloc(64));
      },
      "memdesc: wrong type: page_frag_free\\(0x[0-9a-f]+\\): expected Frag\\(page_frag block\\) or a folio, page word "
      "is Slab");
}

TEST_F(FolioFragDeath, PageFragFreeOfAForeignPointer) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        int x;
        a->page_frag_free(&x);
      },
      "memdesc: invalid pointer: page_frag_free\\(0x[0-9a-f]+\\): address is outside the arena");
}

TEST_F(FolioFragDeath, PageFragBadAlignment) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        nc.alloc_align(64, 24);
      },
      "memdesc: bad argument: page_frag_alloc: alignment must be a power of two");
}

// Alignment 0 is not a power of two whatever the cache holds: with a block in hand the fast
// path used to take it and return offset 0, the start of a live fragment.
TEST_F(FolioFragDeath, PageFragAlignZeroWithABlockInHand) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        void* live = nc.alloc(100);
        void* p = nc.alloc_align(64, 0);
        if (p == live) std::abort();
      },
      "memdesc: bad argument: page_frag_alloc: alignment must be a power of two");
}

// FRAG-LIVE (checked builds): a second page_frag_free of one fragment used to drop another
// fragment's reference, and free the block under it.
TEST_F(FolioFragDeath, PageFragDoubleFreeWithAnotherFragmentOut) {
  if (!kChecked) GTEST_SKIP() << "fragments are tracked one by one in checked builds";
  for (FragBlock kind : {FragBlock::Frag, FragBlock::Folio})
    EXPECT_DEATH(
        {
          auto a = test::make_arena(16 << 20);
          PageFragCache nc = a->page_frag_cache(kind);
          void* x = nc.alloc(100);
          void* y = nc.alloc(100);
          a->page_frag_free(x);
          a->page_frag_free(x);
          a->page_frag_free(y);
        },
        "memdesc: bad descriptor: page_frag_free\\(fragment 0x[0-9a-f]+\\): not a live fragment: freed twice");
}

// Every build: more frees than fragments while the cache still holds the block leave its
// refcount below the bias; the cache finds it when it lets the block go (drain, retire), and
// says so, instead of freeing the block with a reference too few. (Checked builds find it at
// the second free. A double free while another fragment is out keeps the count plausible: fast
// builds do not find that one, docs/FRAG.md.)
TEST_F(FolioFragDeath, PageFragDoubleFreeFoundWhenTheCacheLetsGo) {
  for (FragBlock kind : {FragBlock::Frag, FragBlock::Folio})
    EXPECT_DEATH(
        {
          auto a = test::make_arena(16 << 20);
          PageFragCache nc = a->page_frag_cache(kind);
          void* x = nc.alloc(100);
          a->page_frag_free(x);
          a->page_frag_free(x);
          nc.drain();
        },
        "memdesc: bad descriptor: page_frag_free\\((fragment|page_frag block) 0x[0-9a-f]+\\): .*freed twice");
}

// folio_put takes only a folio descriptor: null, or a pointer to anything else, is reported as
// such (it used to segfault, or decrement whatever lay at the refcount's offset).
TEST_F(FolioFragDeath, FolioPutOfNullOrOfANonFolio) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->folio_put(nullptr);
      },
      "memdesc: bad argument: folio_put: null folio");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        a->folio_put(static_cast<Folio*>(a->kmalloc(64)));
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): not a folio: the address is arena memory");
  // A descriptor of the metadata region that is not a folio: a zsmalloc handle slot.
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto pool = a->zs_create_pool().value();
        ZsHandle h = pool->malloc(64).value();
        a->folio_put(reinterpret_cast<Folio*>(h));
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): not a folio: the address lies in no folio descriptor slab "
      "\\(page word Slab");
  // Inside a live folio descriptor: never a decrement of the field it lands on.
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        a->folio_put(reinterpret_cast<Folio*>(reinterpret_cast<char*>(f) + 8));
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): not a folio: the address points inside a folio "
      "descriptor, not at its start");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        static Folio fake{};
        a->folio_put(&fake);
      },
      "memdesc: bad descriptor: folio_put\\(folio 0x[0-9a-f]+\\): not a folio: the address is outside the arena");
}

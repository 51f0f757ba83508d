// ASan inside the arena (base/asan.hpp): in the asan preset every allocator poisons what its
// users may not touch, so a use after free or an overflow of a kmalloc object, a page, a page
// fragment or a zsmalloc object is an AddressSanitizer report at the faulting access.
#include <gtest/gtest.h>

#include <cstring>

#include "base/asan.hpp"
#include "test_support.hpp"

using namespace memdesc;

namespace {

class AsanArena : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!asan::kOn) GTEST_SKIP() << "an ASan build poisons the arena";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
  }
};

constexpr const char* kPoisoned = "AddressSanitizer: use-after-poison";

// Reads and writes the compiler cannot drop.
char read_byte(const void* p) { return *static_cast<const volatile char*>(p); }
void write_byte(void* p) { *static_cast<volatile char*>(p) = 1; }

TEST_F(AsanArena, KmallocUseAfterFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->kmalloc(64));
        a->kfree(p);
        read_byte(p + 8);
      },
      kPoisoned);
}

TEST_F(AsanArena, KmallocOverflowPastTheSizeAsked) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->kmalloc(100));  // a 128-byte slot
        std::memset(p, 0, 100);
        write_byte(p + 100);
      },
      kPoisoned);
}

TEST_F(AsanArena, KmemCacheOverflowIntoTheNextSlot) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("asan", 48).value();
        char* p = static_cast<char*>(a->kmem_cache_alloc(c));
        write_byte(p + 48 + 8);  // a free slot
      },
      kPoisoned);
}

TEST_F(AsanArena, PageUseAfterFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->alloc_pages(1));
        std::memset(p, 0, 8192);
        a->free_pages(p);
        read_byte(p + 5000);
      },
      kPoisoned);
}

TEST_F(AsanArena, PageOverflowIntoAFreePage) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        char* p = static_cast<char*>(a->alloc_pages(0));  // the lowest page; the next one is free
        write_byte(p + 4096);
      },
      kPoisoned);
}

TEST_F(AsanArena, FragmentUseAfterFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        char* keep = static_cast<char*>(nc.alloc(64));  // keeps the block
        char* p = static_cast<char*>(nc.alloc(200));
        a->page_frag_free(p);
        read_byte(p + 10);
        a->page_frag_free(keep);
      },
      kPoisoned);
}

TEST_F(AsanArena, FragmentOverflow) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache(FragBlock::Folio);
        char* p = static_cast<char*>(nc.alloc(200));
        write_byte(p + 200);
      },
      kPoisoned);
}

TEST_F(AsanArena, ZsmallocUseAfterFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto pool = a->zs_create_pool({}).value();
        ZsHandle keep = pool->malloc(100).value();
        ZsHandle h = pool->malloc(100).value();
        char buf[100];
        const char* p = static_cast<const char*>(pool->read_begin(h, buf, 100));
        pool->read_end(h, p);
        pool->free(h);
        read_byte(p + 20);  // the stale pointer into the zspage
        pool->free(keep);
      },
      kPoisoned);
}

TEST_F(AsanArena, ZsmallocOverflowIntoTheNextSlot) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto pool = a->zs_create_pool({}).value();
        ZsHandle h = pool->malloc(100).value();
        std::size_t cap = pool->object_capacity(h);
        char buf[100];
        char* p = const_cast<char*>(static_cast<const char*>(pool->read_begin(h, buf, 100)));
        write_byte(p + cap + kZsHeaderSize);  // past the next slot's header: its payload, free
      },
      kPoisoned);
}

// The next slot allocated: its header (handle | 1) is poisoned still, so the first byte past the
// object is reported, not a silent rewrite of the neighbour's handle.
TEST_F(AsanArena, ZsmallocOverflowOntoTheNextSlotsHeader) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto pool = a->zs_create_pool({}).value();
        ZsHandle h = pool->malloc(100).value();
        ZsHandle next = pool->malloc(100).value();  // the slot after h's
        (void)next;
        std::size_t cap = pool->object_capacity(h);
        char buf[100];
        char* p = const_cast<char*>(static_cast<const char*>(pool->read_begin(h, buf, 100)));
        write_byte(p + cap);  // the next slot's header
      },
      kPoisoned);
}

// What users may touch stays touchable: ksize says the whole slot is theirs.
TEST_F(AsanArena, KsizeUnpoisonsTheWholeObject) {
  auto a = test::make_arena(16 << 20);
  char* p = static_cast<char*>(a->kmalloc(100));
  std::size_t n = a->ksize(p);
  ASSERT_EQ(n, 128u);
  std::memset(p, 0x5a, n);
  a->kfree(p);
  a->validate();
}

}  // namespace

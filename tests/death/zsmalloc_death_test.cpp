// Death tests: misuse of a zsmalloc pool — a freed, forged or foreign handle, an access beyond
// the object, unbalanced read_end, putback of a page that is not isolated — is a fatal report
// naming the operation, the pool and the handle.
#include <gtest/gtest.h>

#include <thread>

#include "test_support.hpp"

using namespace memdesc;

namespace {

class ZsDeath : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

std::unique_ptr<ZsPool> pool_of(Arena& a, const char* name = "d") {
  ZsPoolConfig c;
  c.name = name;
  return std::move(a.zs_create_pool(c).value());
}

// Checked builds know the handle is freed; fast builds find that it names no object.
constexpr const char* kFreed = "memdesc: bad handle: %s\\(pool d, handle 0x[0-9a-f]+\\): (handle already freed|freed or forged handle)";

std::string freed_re(const char* op) {
  char buf[256];
  std::snprintf(buf, sizeof buf, kFreed, op);
  return buf;
}

TEST_F(ZsDeath, DoubleFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle keep = p->malloc(100).value();
        ZsHandle h = p->malloc(100).value();
        p->free(h);
        p->free(h);
        p->free(keep);
      },
      freed_re("zs_free"));
}

TEST_F(ZsDeath, ReadAfterFree) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle keep = p->malloc(2000).value();
        ZsHandle h = p->malloc(2000).value();
        p->free(h);
        char buf[16];
        p->read_begin(h, buf, sizeof buf);
        p->free(keep);
      },
      freed_re("zs_obj_read_begin"));
}

TEST_F(ZsDeath, HandleZero) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        p->free(0);
      },
      "memdesc: bad handle: zs_free\\(pool d, handle 0x0\\): handle 0 \\(never a valid handle\\)");
}

TEST_F(ZsDeath, ForgedHandleFromKmalloc) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        void* k = a->kmalloc(8);
        p->write(reinterpret_cast<ZsHandle>(k), "x", 1);
      },
      "memdesc: bad handle: zs_obj_write\\(pool d, handle 0x[0-9a-f]+\\): not a handle: an address of the arena "
      "\\(handles live in its metadata region\\)");
  // In the metadata region, but a folio descriptor's slot, not a handle's.
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        p->write(reinterpret_cast<ZsHandle>(a->folio_alloc(0)), "x", 1);
      },
      "memdesc: bad handle: zs_obj_write\\(pool d, handle 0x[0-9a-f]+\\): not a handle of this pool");
}

TEST_F(ZsDeath, HandleOfAnotherPool) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        auto q = pool_of(*a, "other");
        ZsHandle h = q->malloc(64).value();
        p->free(h);
      },
      "memdesc: bad handle: zs_free\\(pool d, handle 0x[0-9a-f]+\\): not a handle of this pool");
}

TEST_F(ZsDeath, HandleOutsideTheArena) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        static std::uint64_t outside = 0;
        p->free(reinterpret_cast<ZsHandle>(&outside));
      },
      "memdesc: bad handle: zs_free\\(pool d, handle 0x[0-9a-f]+\\): not a handle: outside the arena's metadata region or "
      "misaligned");
}

TEST_F(ZsDeath, ReadBeyondTheObject) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h = p->malloc(100).value();  // class 112: 104 bytes for the caller
        static char buf[4096];
        p->read_begin(h, buf, 200);
      },
      "memdesc: bad handle: zs_obj_read_begin\\(pool d, handle 0x[0-9a-f]+\\): length beyond the object's slot");
}

TEST_F(ZsDeath, ReadEndWithoutReadBegin) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h = p->malloc(100).value();
        p->read_end(h, nullptr);
      },
      "memdesc: bad handle: zs_obj_read_end\\(pool d, handle 0x[0-9a-f]+\\): read_end without read_begin");
}

TEST_F(ZsDeath, PutbackOfAPageNotIsolated) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h = p->malloc(100).value();
        (void)h;
        p->putback_page(p->pages().front().addr);
      },
      "memdesc: bad argument: zs_putback_page: the page is not isolated");
}

}  // namespace

// An arena must outlive what uses its memory: ~Arena says so instead of a crash later.
TEST_F(ZsDeath, ArenaDestroyedBeforeItsPool) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        a.reset();
      },
      "memdesc: bad argument: ~Arena: destroyed while 1 zsmalloc pool\\(s\\) and 0 page_frag cache\\(s\\) still use it");
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache c = a->page_frag_cache();
        PageFragCache moved = std::move(c);  // counted once
        a.reset();
      },
      "memdesc: bad argument: ~Arena: destroyed while 0 zsmalloc pool\\(s\\) and 1 page_frag cache\\(s\\) still use it");
}

// ZS-LOCK: a zspage left locked with no access under way is found by validate() under its own ID.
TEST_F(ZsDeath, ValidateFindsAZspageLeftLocked) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h = p->malloc(100).value();
        char buf[100];
        (void)p->read_begin(h, buf, 100);  // holds the zspage's read lock until read_end
        p->validate();
      },
      "memdesc: invariant ZS-LOCK violated: pool d class [0-9]+: zspage 0x[0-9a-f]+ is locked \\(1\\)");
}

// Another thread frees the object this one holds between read_begin and read_end: the report
// comes at this thread's read_end and says what happened (checked builds exactly; fast builds
// find the slot no longer holds the handle), not that this read_end was wrong.
TEST_F(ZsDeath, ObjectFreedByAnotherThreadWhilePinned) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle keep = p->malloc(100).value();  // keeps the zspage alive
        ZsHandle h = p->malloc(100).value();
        (void)keep;
        char buf[100];
        const void* m = p->read_begin(h, buf, 100);
        std::thread([&] { p->free(h); }).join();  // the misuse, on another thread
        p->read_end(h, m);
      },
      "memdesc: bad handle: zs_obj_read_end\\(pool d, handle 0x[0-9a-f]+\\): .*freed");
}

// ZS-PIN: read_end matches this thread's read_begin of that handle. A second read_end used to
// drop another reader's pin of the same zspage, and the report fired later on that reader.
TEST_F(ZsDeath, SecondReadEndIsBlamedOnItself) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h1 = p->malloc(100).value();
        ZsHandle h2 = p->malloc(100).value();  // the same zspage
        char b1[100];
        char b2[100];
        const void* m1 = p->read_begin(h1, b1, 100);
        const void* m2 = p->read_begin(h2, b2, 100);
        p->read_end(h1, m1);
        p->read_end(h1, m1);  // the misuse: reported here
        p->read_end(h2, m2);
      },
      "memdesc: bad handle: zs_obj_read_end\\(pool d, handle 0x[0-9a-f]+\\): read_end without read_begin on this "
      "thread \\(or a second read_end\\)");
}

TEST_F(ZsDeath, FreeBetweenReadBeginAndReadEnd) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        auto p = pool_of(*a);
        ZsHandle h = p->malloc(100).value();
        char b[100];
        p->read_begin(h, b, 100);
        p->free(h);
      },
      "memdesc: bad handle: zs_free\\(pool d, handle 0x[0-9a-f]+\\): object freed between read_begin and read_end");
}

// Folios: allocation writes every page word, lookups from any page, references, the lock in
// the descriptor, failure unwinding, statistics.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace memdesc;

namespace {

struct FaultGuard {
  FaultGuard(std::uint64_t page, std::uint64_t desc) { set_fault_injection(page, desc); }
  ~FaultGuard() { set_fault_injection(0, 0); }
};

double thread_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

TEST(Folio, EveryOrderWritesEveryPageWordAndAnyPageFindsIt) {
  auto a = test::make_arena(64 << 20);
  for (unsigned order = 0; order <= a->max_order(); ++order) {
    Folio* f = a->folio_alloc(order);
    ASSERT_NE(f, nullptr) << order;
    EXPECT_EQ(folio_ref_count(f), 1);
    EXPECT_EQ(folio_order(f), order);
    EXPECT_EQ(folio_nr_pages(f), std::uint64_t{1} << order);
    EXPECT_EQ(folio_test_large(f), order != 0);
    EXPECT_EQ(folio_test_flag(f, FOLIO_LARGE), order != 0);
    EXPECT_EQ(f->mapcount.load(), -1);
    auto* base = static_cast<char*>(a->folio_address(f));
    EXPECT_EQ(a->pfn_of(base), folio_pfn(f));
    EXPECT_EQ(folio_pfn(f) % folio_nr_pages(f), 0u) << "FOLIO-SAME: aligned";
    for (std::uint64_t i = 0; i < folio_nr_pages(f); ++i) {
      MemdescWord w = a->pfn_to_memdesc(folio_pfn(f) + i);
      EXPECT_TRUE(w.is(MemdescType::Anon));
      EXPECT_EQ(w.desc(), f);
      EXPECT_EQ(w.order(), order);
      EXPECT_EQ(a->page_folio(base + i * kPageSize + 123), f);
      EXPECT_EQ(a->pfn_folio(folio_pfn(f) + i), f);
    }
    std::memset(base, 0x5a, kPageSize << order);  // the memory is the caller's
    a->validate();
    a->folio_put(f);
    EXPECT_EQ(a->page_folio(base), nullptr);
    EXPECT_TRUE(a->pfn_to_memdesc(a->pfn_of(base)).is(MemdescType::Buddy));
  }
  test::expect_all_returned(*a);
}

TEST(Folio, FileKindAndDescriptorSizes) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(0, GFP_NONE, FolioKind::File);
  Folio* g = a->folio_alloc(3, GFP_ZERO, FolioKind::Anon);
  ASSERT_TRUE(f && g);
  EXPECT_TRUE(a->virt_to_memdesc(a->folio_address(f))->is(MemdescType::File));
  for (std::size_t i = 0; i < (kPageSize << 3); ++i) ASSERT_EQ(static_cast<char*>(a->folio_address(g))[i], 0);
  ArenaInfo i = a->info();
  EXPECT_EQ(i.folios, 2u);
  EXPECT_EQ(i.folio_descriptor_bytes, 64u + 96u);
  EXPECT_GT(i.metadata.descriptors, 0u);  // the folio caches' pages are descriptor metadata
  a->folio_put(f);
  a->folio_put(g);
  EXPECT_EQ(a->info().folios, 0u);
  test::expect_all_returned(*a);
}

TEST(Folio, PageFolioIsNullForEveryOtherPage) {
  auto a = test::make_arena(16 << 20);
  void* pages = a->alloc_pages(1);
  void* obj = a->kmalloc(64);
  void* large = a->kmalloc(20000);
  int local = 0;
  EXPECT_EQ(a->page_folio(pages), nullptr);
  EXPECT_EQ(a->page_folio(obj), nullptr);
  EXPECT_EQ(a->page_folio(large), nullptr);
  EXPECT_EQ(a->page_folio(&local), nullptr);
  EXPECT_EQ(a->folio_lookup(pages), nullptr);
  EXPECT_EQ(a->folio_lookup(&local), nullptr);
  EXPECT_EQ(a->pfn_folio(a->pages() - 1), nullptr);  // a free page
  a->free_pages(pages);
  a->kfree(obj);
  a->kfree(large);
  test::expect_all_returned(*a);
}

TEST(Folio, ReferencesAndTheLastPut) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(2);
  ASSERT_NE(f, nullptr);
  folio_get(f);
  EXPECT_TRUE(folio_try_get(f));
  EXPECT_EQ(folio_ref_count(f), 3);
  Folio* l = a->folio_lookup(static_cast<char*>(a->folio_address(f)) + 3 * kPageSize);
  EXPECT_EQ(l, f);
  EXPECT_EQ(folio_ref_count(f), 4);
  a->folio_put(l);
  a->folio_put(f);
  a->folio_put(f);
  EXPECT_EQ(a->page_folio(a->folio_address(f)), f) << "one reference left: still allocated";
  void* addr = a->folio_address(f);
  a->folio_put(f);
  EXPECT_EQ(a->page_folio(addr), nullptr);
  EXPECT_EQ(a->folio_lookup(addr), nullptr);
  test::expect_all_returned(*a);
}

TEST(Folio, Flags) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(0);
  EXPECT_FALSE(folio_test_flag(f, FOLIO_DIRTY));
  folio_set_flag(f, FOLIO_DIRTY);
  folio_set_flag(f, FOLIO_UPTODATE);
  EXPECT_TRUE(folio_test_flag(f, FOLIO_DIRTY));
  folio_clear_flag(f, FOLIO_DIRTY);
  EXPECT_FALSE(folio_test_flag(f, FOLIO_DIRTY));
  EXPECT_TRUE(folio_test_flag(f, FOLIO_UPTODATE));
  a->folio_put(f);
  // A reused descriptor starts with clean flags.
  Folio* g = a->folio_alloc(0);
  EXPECT_FALSE(folio_test_flag(g, FOLIO_UPTODATE));
  a->folio_put(g);
}

TEST(Folio, TrylockAndUncontendedLock) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(1);
  EXPECT_FALSE(folio_test_locked(f));
  EXPECT_TRUE(folio_trylock(f));
  EXPECT_TRUE(folio_test_locked(f));
  EXPECT_FALSE(folio_trylock(f));
  folio_unlock(f);
  folio_lock(f);
  EXPECT_EQ(f->lock_word.load(), 1u) << "uncontended: no sleepers recorded";
  folio_unlock(f);
  EXPECT_EQ(f->lock_word.load(), 0u);
  a->folio_put(f);
}

TEST(Folio, ContendedLockSleepsInsteadOfSpinning) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(0);
  folio_lock(f);
  std::atomic<bool> acquired{false};
  double waiter_cpu_ms = 0;
  std::thread waiter([&] {
    double c0 = thread_cpu_ms();
    folio_lock(f);
    waiter_cpu_ms = thread_cpu_ms() - c0;
    acquired = true;
    folio_unlock(f);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(acquired.load());
  EXPECT_EQ(f->lock_word.load(), 2u) << "the waiter said it sleeps";
  folio_unlock(f);
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_LT(waiter_cpu_ms, 50.0) << "a 200 ms wait must not burn CPU";
  EXPECT_EQ(f->lock_word.load(), 0u);
  a->folio_put(f);
}

TEST(Folio, LockExcludesAcrossThreads) {
  auto a = test::make_arena(16 << 20);
  Folio* f = a->folio_alloc(0);
  constexpr int kThreads = 4, kIters = 20000;
  long counter = 0;  // guarded by the folio lock only
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        folio_lock(f);
        long v = counter;
        counter = v + 1;
        folio_unlock(f);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, long{kThreads} * kIters);
  EXPECT_FALSE(folio_test_locked(f));
  a->folio_put(f);
}

TEST(Folio, FailuresReturnNullAndUnwind) {
  auto a = test::make_arena(8 << 20, 10, 0);
  // Exhaust the arena with order-10 folios: the failing one gives its descriptor back.
  std::vector<Folio*> fs;
  while (Folio* f = a->folio_alloc(10)) fs.push_back(f);
  EXPECT_EQ(last_error().code, Errc::out_of_memory);
  EXPECT_FALSE(fs.empty());
  for (Folio* f : fs) a->folio_put(f);
  EXPECT_EQ(a->folio_alloc(a->max_order() + 1), nullptr);
  {
    FaultGuard g(0, 1);  // every descriptor allocation fails
    EXPECT_EQ(a->folio_alloc(0), nullptr);
    EXPECT_EQ(last_error().code, Errc::out_of_memory);
  }
  {
    FaultGuard g(1, 0);  // every page allocation fails: the descriptor goes back
    EXPECT_EQ(a->folio_alloc(2), nullptr);
  }
  EXPECT_EQ(a->info().folios, 0u);
  test::expect_all_returned(*a);
}

}  // namespace

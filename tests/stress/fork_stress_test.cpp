// fork() in the parent and in the child (rcu/fork.hpp, docs/LOCKING.md "fork"): a child of a
// single-threaded parent may do everything that waits for RCU (shrink, destroying an RCU cache,
// a pool, the arena); a child forked while other threads allocate gets every lock free, the
// dead threads' cached pages and objects back, and a consistent arena, which it destroys even
// though those threads' page_frag caches and pools are never destroyed.
#include <gtest/gtest.h>
#include <memdesc/memdesc.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "test_support.hpp"

// A child of a multi-threaded parent makes a thread (liburcu's callback thread): TSan must let it.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }

namespace {

using namespace memdesc;

// What every child does with the arena it inherited, then with one of its own. Exits 0 when
// all went well; a hang ends with SIGALRM, a failed check with exit code 2, a report with abort.
// `quiescent`: the parent had no other thread, so the inherited arena must validate. (A thread
// that the fork stopped halfway through an allocation leaves what it was making unpublished in
// the child: leaked, never handed out twice, but validate() reports it.)
[[noreturn]] void child_work(std::unique_ptr<Arena>& inherited, KmemCache* rcu_cache, std::unique_ptr<ZsPool> pool,
                             bool quiescent) {
  Arena& a = *inherited;
  alarm(60);
  auto check = [](bool ok) {
    if (!ok) _exit(2);
  };
  // Nothing is handed out twice: every object keeps its own pattern while all are held.
  std::vector<void*> objs;
  std::vector<Folio*> folios;
  for (int i = 0; i < 2000; ++i) {
    std::size_t n = 16 + (i % 64) * 8;
    void* p = a.kmalloc(n);
    check(p != nullptr);
    test::fill(p, n, static_cast<std::uint64_t>(i));
    objs.push_back(p);
    if (i % 10 == 0) {
      Folio* f = a.folio_alloc(i % 3);
      check(f != nullptr);
      test::fill(a.folio_address(f), 4096, static_cast<std::uint64_t>(i) + 100000);
      folios.push_back(f);
    }
  }
  for (std::size_t i = 0; i < objs.size(); ++i) check(test::check(objs[i], 16 + (i % 64) * 8, i) == SIZE_MAX);
  for (std::size_t i = 0; i < folios.size(); ++i) check(test::check(a.folio_address(folios[i]), 4096, i * 10 + 100000) == SIZE_MAX);
  for (void* p : objs) a.kfree(p);
  for (Folio* f : folios) a.folio_put(f);
  void* pg = a.alloc_pages(1);
  check(pg != nullptr);
  a.free_pages(pg);
  void* o = a.kmem_cache_alloc(rcu_cache);
  check(o != nullptr);
  a.kmem_cache_free(rcu_cache, o);
  auto h = pool->malloc(700);
  check(h.ok());
  pool->free(h.value());
  pool.reset();                    // waits for RCU-deferred zspage-descriptor frees
  a.kmem_cache_destroy(rcu_cache);  // an RCU barrier
  a.shrink();
  if (quiescent) a.validate();
  // The inherited arena destroyed: with it the page_frag caches and pools of the parent's
  // threads, which did not survive the fork.
  inherited.reset();
  // A fresh arena in the child, created and destroyed.
  auto b = Arena::create({.size = 16u << 20}).value();
  void* q = b->kmalloc(100);
  check(q != nullptr);
  b->kfree(q);
  b.reset();
  _exit(0);
}

int wait_child(pid_t pid) {
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

TEST(Fork, ChildOfSingleThreadedParentWaitsForRcu) {
  auto a = Arena::create({.size = 64u << 20}).value();
  // RCU-deferred work queued before the fork: the child must complete it.
  KmemCache* c = a->kmem_cache_create("fork-rcu", 96, 0, SLAB_TYPESAFE_BY_RCU).value();
  std::vector<void*> v;
  for (int i = 0; i < 5000; ++i) v.push_back(a->kmem_cache_alloc(c));
  for (void* p : v) a->kmem_cache_free(c, p);
  a->shrink();
  auto pool = a->zs_create_pool({}).value();
  for (int round = 0; round < 3; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_work(a, c, std::move(pool), /*quiescent=*/true);
    EXPECT_EQ(wait_child(pid), 0) << "round " << round;
  }
  // The parent goes on as before.
  void* p = a->kmalloc(64);
  ASSERT_NE(p, nullptr);
  a->kfree(p);
  pool.reset();
  a->kmem_cache_destroy(c);
  a->validate();
}

TEST(Fork, HundredForksWhileTwoThreadsAllocate) {
  auto a = Arena::create({.size = 256u << 20}).value();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ops{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t)
    workers.emplace_back([&, t] {
      PageFragCache nc = a->page_frag_cache();
      auto pool = a->zs_create_pool({}).value();
      std::vector<void*> held;
      std::uint64_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 64; ++k) held.push_back(a->kmalloc(8u << ((i + k) % 10)));
        void* pg = a->alloc_pages(static_cast<unsigned>(i % 4));
        Folio* f = a->folio_alloc(static_cast<unsigned>(i % 3));
        void* fr = nc.alloc(512);
        auto h = pool->malloc(100 + (i % 3000));
        for (void* p : held) a->kfree(p);
        held.clear();
        if (pg) a->free_pages(pg);
        if (f) a->folio_put(f);
        if (fr) a->page_frag_free(fr);
        if (h.ok()) pool->free(h.value());
        if (i % 256 == static_cast<std::uint64_t>(t)) pool->compact();
        ++i;
        ops.fetch_add(1, std::memory_order_relaxed);
      }
    });
  int failed = 0;
  for (int round = 0; round < 100; ++round) {
    std::uint64_t before = ops.load();
    while (ops.load() < before + 20) std::this_thread::yield();  // the threads are busy
    KmemCache* c = a->kmem_cache_create("fork-rcu", 64, 0, SLAB_TYPESAFE_BY_RCU).value();
    auto pool = a->zs_create_pool({}).value();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_work(a, c, std::move(pool), /*quiescent=*/false);
    int rc = wait_child(pid);
    if (rc != 0) ++failed;
    EXPECT_EQ(rc, 0) << "round " << round;
    pool.reset();
    a->kmem_cache_destroy(c);
  }
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_EQ(failed, 0);
  a->shrink();
  a->validate();
}

}  // namespace

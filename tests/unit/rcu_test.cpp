// Unit tests for the RCU wrapper: grace periods wait for readers, callbacks run after them and
// barrier() waits for callbacks; a reader never sees freed memory.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "rcu/rcu.hpp"

using namespace memdesc;
using namespace std::chrono_literals;

TEST(Rcu, NestedReadSections) {
  EXPECT_FALSE(rcu::in_read_section());
  {
    rcu::ReadGuard g1;
    {
      rcu::ReadGuard g2;
      EXPECT_TRUE(rcu::in_read_section());
    }
    EXPECT_TRUE(rcu::in_read_section());
  }
  EXPECT_FALSE(rcu::in_read_section());
}

TEST(Rcu, SynchronizeWaitsForAPreexistingReader) {
  std::atomic<int> stage{0};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    rcu::ReadGuard g;
    stage.store(1);
    std::this_thread::sleep_for(100ms);
    reader_done.store(true);
  });
  while (stage.load() == 0) std::this_thread::yield();
  rcu::synchronize();
  EXPECT_TRUE(reader_done.load());  // RCU-GP
  reader.join();
}

struct Node {
  rcu::Head head;
  std::atomic<int>* freed;
  int value;
};

TEST(Rcu, CallbacksRunAfterGraceAndBarrierWaits) {
  std::atomic<int> freed{0};
  for (int i = 0; i < 100; ++i) {
    auto* n = new Node{{}, &freed, i};
    rcu::call(&n->head, [](rcu::Head* h) {
      auto* node = reinterpret_cast<Node*>(h);
      node->freed->fetch_add(1);
      delete node;
    });
  }
  rcu::barrier();
  EXPECT_EQ(freed.load(), 100);
}

// A callback may queue another callback (and enter read-side sections) on liburcu's thread.
TEST(Rcu, CallbackMayCallAgain) {
  static std::atomic<int> runs{0};
  struct Chain {
    rcu::Head head;
    int left;
  };
  runs = 0;
  auto* c = new Chain{{}, 3};
  rcu::call(&c->head, [](rcu::Head* h) {
    auto* self = reinterpret_cast<Chain*>(h);
    { rcu::ReadGuard g; }
    runs.fetch_add(1);
    if (--self->left > 0) {
      rcu::call(&self->head, self->head.fn);
    } else {
      delete self;
    }
  });
  while (runs.load() < 3) rcu::barrier();
  EXPECT_EQ(runs.load(), 3);
}

// Readers dereference a published pointer while an updater replaces it and frees the old one
// with call(). A broken grace period shows as a poisoned value (or an ASan use-after-free).
TEST(Rcu, ReadersNeverSeeFreedObjects) {
  struct Obj {
    rcu::Head head;
    std::atomic<std::uint64_t> magic;
  };
  constexpr std::uint64_t kLive = 0x11FE11FE11FE11FEull;
  std::atomic<Obj*> current{new Obj{{}, {kLive}}};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        rcu::ReadGuard g;
        Obj* o = current.load(std::memory_order_acquire);
        if (o->magic.load(std::memory_order_relaxed) != kLive) bad.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  // Keep replacing until the readers have really run alongside the updates.
  for (int i = 0; i < 2000 || reads.load(std::memory_order_relaxed) < 20000; ++i) {
    Obj* old = current.exchange(new Obj{{}, {kLive}}, std::memory_order_acq_rel);
    rcu::call(&old->head, [](rcu::Head* h) {
      auto* o = reinterpret_cast<Obj*>(h);
      o->magic.store(0xDEAD, std::memory_order_relaxed);
      delete o;
    });
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  rcu::barrier();
  delete current.load();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
}

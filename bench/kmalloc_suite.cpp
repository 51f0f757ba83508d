// bench/kmalloc_suite.cpp — `memdesc bench kmalloc`: kmalloc/kfree against malloc/free of
// glibc, jemalloc, tcmalloc and mimalloc, in one process, interleaved.
//
//   pair_N         malloc(N) + free, repeated (N = 16, 64, 256, 1024, 4096)
//   bulk_1000      1000 x malloc(64), then 1000 x free (ns per pair)
//   larson         2 threads replace random slots of a 1000-slot array with objects of
//                  16..1000 bytes; every round the array passes to a new thread, which frees
//                  what the old one allocated ("bleeding" cross-thread frees)
//   xmalloc        a producer allocates 1..512-byte objects and passes them in batches of 64
//                  through a locked queue to a consumer that frees them
//   alloc_test     2 threads keep 5000 objects of skewed sizes (mostly small, a tail up to
//                  64 KiB) and replace random ones; run first (cold heaps) in a forked child per
//                  allocator so each one's peak RSS growth is its own
//   glibc_thread   2 threads, each with its own 4096-slot working set of 8..4096-byte objects
// The workloads are written here from the published descriptions of those benchmarks.
#include "kmalloc_suite.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <algorithm>
#include <memdesc/memdesc.hpp>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace memdesc::bench {
namespace {

struct Kmalloc {
  Arena* a;
  void* alloc(std::size_t n) const { return a->kmalloc(n); }
  void free(void* p) const { a->kfree(p); }
};

struct PeerMalloc {
  const Peer* peer;
  void* alloc(std::size_t n) const { return peer->malloc(n); }
  void free(void* p) const { peer->free(p); }
};

// A fast deterministic generator: the benchmark measures the allocator, not std::mt19937.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

template <class A>
double pair(const A& a, std::size_t size, std::size_t n) {
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    void* p = a.alloc(size);
    escape(p);
    a.free(p);
  }
  return ns_per_op(t0, n);
}

template <class A>
double bulk(const A& a, std::size_t reps, std::vector<void*>& v) {
  v.resize(1000);
  auto t0 = Clock::now();
  for (std::size_t r = 0; r < reps; ++r) {
    for (auto& p : v) p = a.alloc(64);
    escape(v.data());
    for (void* p : v) a.free(p);
  }
  return ns_per_op(t0, 1000 * reps);
}

template <class A>
double larson(const A& a, std::size_t rounds, std::size_t steps) {
  constexpr unsigned kThreads = 2;
  constexpr std::size_t kSlots = 1000;
  std::vector<std::vector<void*>> arrays(kThreads, std::vector<void*>(kSlots));
  for (auto& arr : arrays)
    for (auto& p : arr) p = a.alloc(16 + 8 * (reinterpret_cast<std::uintptr_t>(&p) % 100));
  auto t0 = Clock::now();
  for (std::size_t r = 0; r < rounds; ++r) {
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {  // a new thread inherits the array and frees its predecessor's objects
        Rng rng{r * 7919 + t + 1};
        std::vector<void*>& arr = arrays[t];
        for (std::size_t i = 0; i < steps; ++i) {
          std::size_t k = rng.next() % kSlots;
          a.free(arr[k]);
          arr[k] = a.alloc(16 + rng.next() % 985);
          *static_cast<char*>(arr[k]) = 1;
        }
      });
    for (auto& th : ts) th.join();
  }
  double ns = ns_per_op(t0, rounds * steps * kThreads);
  for (auto& arr : arrays)
    for (void* p : arr) a.free(p);
  return ns;
}

template <class A>
double xmalloc(const A& a, std::size_t objects) {
  constexpr std::size_t kBatch = 64;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::vector<void*>> q;
  bool done = false;
  auto t0 = Clock::now();
  std::thread consumer([&] {
    for (;;) {
      std::vector<void*> b;
      {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return !q.empty() || done; });
        if (q.empty()) return;
        b = std::move(q.front());
        q.pop_front();
      }
      cv.notify_all();  // room in the queue for the producer
      for (void* p : b) a.free(p);
    }
  });
  Rng rng{12345};
  for (std::size_t i = 0; i < objects; i += kBatch) {
    std::vector<void*> b(kBatch);
    for (auto& p : b) {
      p = a.alloc(1 + rng.next() % 512);
      *static_cast<char*>(p) = 1;
    }
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return q.size() < 64; });  // bounded: the producer cannot run away
    q.push_back(std::move(b));
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> l(m);
    done = true;
  }
  cv.notify_all();
  consumer.join();
  return ns_per_op(t0, objects);
}

std::size_t skewed_size(Rng& rng) {
  std::uint64_t r = rng.next() % 1000;
  if (r < 700) return 8 + rng.next() % 120;      // 70 %: tiny
  if (r < 950) return 128 + rng.next() % 896;    // 25 %: small
  if (r < 995) return 1024 + rng.next() % 7168;  // 4.5 %: medium
  return 8192 + rng.next() % 57344;              // 0.5 %: large, up to 64 KiB
}

// Runs body(thread index) on `threads` threads at once; ns per operation over all of them.
template <class Body>
double threaded(unsigned threads, std::size_t ops_per_thread, Body body) {
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) ts.emplace_back(body, t);
  for (auto& th : ts) th.join();
  return ns_per_op(t0, ops_per_thread * threads);
}

template <class A>
double alloc_test(const A& a, std::size_t steps) {
  constexpr unsigned kThreads = 2;
  constexpr std::size_t kLive = 5000;
  return threaded(kThreads, steps, [&](unsigned t) {
    Rng rng{t + 99};
    std::vector<void*> live(kLive);
    for (auto& p : live) {
      std::size_t n = skewed_size(rng);
      p = a.alloc(n);
      std::memset(p, 0x5a, n);
    }
    for (std::size_t i = 0; i < steps; ++i) {
      std::size_t k = rng.next() % kLive, n = skewed_size(rng);
      a.free(live[k]);
      live[k] = a.alloc(n);
      std::memset(live[k], 0x5a, n);  // touched, so RSS is what the allocator really keeps
    }
    for (void* p : live) a.free(p);
  });
}

template <class A>
double glibc_thread(const A& a, std::size_t steps) {
  constexpr unsigned kThreads = 2;
  constexpr std::size_t kSlots = 4096;
  return threaded(kThreads, steps, [&](unsigned t) {
    Rng rng{t + 7};
    std::vector<void*> slots(kSlots, nullptr);
    for (std::size_t i = 0; i < steps; ++i) {
      std::size_t k = rng.next() % kSlots;
      if (slots[k]) a.free(slots[k]);
      slots[k] = a.alloc(8 + rng.next() % 4089);
    }
    for (void* p : slots)
      if (p) a.free(p);
  });
}

}  // namespace

int run_kmalloc_suite(const SuiteOptions& o) {
  ArenaConfig cfg;
  cfg.size = std::size_t{4} << 30;  // room for every case; untouched memory costs nothing
  std::unique_ptr<Arena> owned = make_suite_arena("kmalloc", cfg);
  if (!owned) return 1;
  Arena& arena = *owned;
  Peers peers = load_peers();
  Suite suite = peer_suite("kmalloc", peers, o);
  auto with = [&](std::size_t i, auto&& f) -> double {
    if (i == 0) return f(Kmalloc{&arena});
    return f(PeerMalloc{&peers.loaded[i - 1]});
  };
  const bool smoke = o.smoke;
  // alloc_test first: every allocator's heap is still cold, so each child's peak RSS growth is
  // what that allocator needs for the workload, not what earlier cases left it to reuse.
  std::vector<std::string> names{"memdesc"};
  for (const Peer& p : peers.loaded) names.push_back(p.name);
  std::vector<std::vector<double>> rss(names.size());
  auto alloc_test_child = [&](std::size_t i) {
    return with(i, [&](const auto& a) -> double {
      ChildResult c = in_child([&] { return alloc_test(a, smoke ? 2000 : 300000); });
      rss[i].push_back(c.peak_rss);
      return c.ns;
    });
  };
  suite.run_case("alloc_test", alloc_test_child);
  // One child's peak varies by ~2 % (where the two threads happen to be when their live sets
  // peak), so the peak RSS takes more children than the timing: untimed rounds, interleaved as
  // the timed ones, until every allocator has kRssSamples (warm-up and timed rounds count).
  constexpr std::size_t kRssSamples = 15;
  if (!smoke && !rss[0].empty())
    for (std::size_t r = 0; rss[0].size() < kRssSamples; ++r)
      for (std::size_t j = 0; j < names.size(); ++j) alloc_test_child((j + r) % names.size());
  {
    CpuPin pin;  // single-threaded cases on one core
    suite.set_extra("pinned_cpu", pin.cpu());
    for (std::size_t size : {16, 64, 256, 1024, 4096})
      suite.run_case("pair_" + std::to_string(size), [&](std::size_t i) {
        return with(i, [&](const auto& a) { return pair(a, size, smoke ? 1000 : 2000000); });
      });
    std::vector<void*> scratch;
    suite.run_case("bulk_1000", [&](std::size_t i) {
      return with(i, [&](const auto& a) { return bulk(a, smoke ? 2 : 500, scratch); });
    });
  }
  suite.run_case("larson", [&](std::size_t i) {
    return with(i, [&](const auto& a) { return larson(a, smoke ? 2 : 20, smoke ? 1000 : 50000); });
  });
  suite.run_case("xmalloc", [&](std::size_t i) {
    return with(i, [&](const auto& a) { return xmalloc(a, smoke ? 6400 : 1000000); });
  });
  suite.run_case("glibc_thread", [&](std::size_t i) {
    return with(i, [&](const auto& a) { return glibc_thread(a, smoke ? 5000 : 1000000); });
  });
  // Peak RSS of the alloc_test children: median per allocator, ratio to the best peer.
  nlohmann::json peak = nlohmann::json::object();
  double best = 0;
  std::string best_name;
  std::vector<double> med(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    med[i] = Suite::median(rss[i]);
    peak[names[i]] = med[i];
    if (i > 0 && (best_name.empty() || med[i] < best)) best = med[i], best_name = names[i];
  }
  if (rss[0].empty()) {  // alloc_test did not run (--only)
    arena.shrink();
    suite.report(stdout);
    return 0;
  }
  suite.set_extra("peak_rss_bytes", {{"case", "alloc_test"},
                                     {"children", rss[0].size()},
                                     {"median", peak},
                                     {"vs_best_peer", best > 0 ? med[0] / best : 0.0},
                                     {"best_peer", best_name}});
  arena.shrink();
  arena.drain_thread_cache();
  arena.validate();
  suite.report(stdout);
  if (!o.json) {
    std::printf("\npeak RSS growth in alloc_test (median of %zu children):", rss[0].size());
    for (std::size_t i = 0; i < names.size(); ++i) std::printf(" %s %.1f MiB", names[i].c_str(), med[i] / 1048576.0);
    std::printf("; memdesc / best peer %.2f (%s)\n", best > 0 ? med[0] / best : 0.0, best_name.c_str());
  }
  return 0;
}

}  // namespace memdesc::bench

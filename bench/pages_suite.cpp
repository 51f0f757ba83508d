// bench/pages_suite.cpp — the pages suite, in the shape of the kernel's page_bench01:
//   pair_orderK   alloc + free of one block of order K, repeated (K = 0..max_order)
//   bulk_1000     allocate 1000 order-0 blocks, then free them (ns per alloc+free)
//   remote_free   one thread allocates order-0 blocks and passes them through a 1024-slot
//                 ring to another thread that frees them (ns per block)
// Peers get what a user would call for page-aligned memory: aligned_alloc(4096 << K, 4096 << K)
// and free. Nobody touches the memory: the cost measured is the allocator's own.
#include "pages_suite.hpp"

#include <atomic>
#include <chrono>
#include <memdesc/memdesc.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace memdesc::bench {
namespace {

struct MemdescPages {
  Arena* a;
  void* alloc(unsigned order) const { return a->alloc_pages(order); }
  void free(void* p) const { a->free_pages(p); }
};

struct PeerPages {
  const Peer* peer;
  void* alloc(unsigned order) const { return peer->aligned_alloc(kPageSize << order, kPageSize << order); }
  void free(void* p) const { peer->free(p); }
};

template <class A>
double pair(const A& a, unsigned order, std::size_t n) {
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    void* p = a.alloc(order);
    escape(p);
    a.free(p);
  }
  return ns_per_op(t0, n);
}

template <class A>
double bulk(const A& a, std::size_t n, std::size_t reps, std::vector<void*>& v) {
  v.resize(n);
  auto t0 = Clock::now();
  for (std::size_t r = 0; r < reps; ++r) {
    for (std::size_t i = 0; i < n; ++i) v[i] = a.alloc(0);
    escape(v.data());
    for (std::size_t i = 0; i < n; ++i) a.free(v[i]);
  }
  return ns_per_op(t0, n * reps);
}

template <class A>
double remote_free(const A& a, std::size_t n) {
  return pass_through_ring(n, 1024, [&] { return a.alloc(0); }, [&](void* p) { a.free(p); });
}

}  // namespace

int run_pages_suite(const SuiteOptions& o) {
  ArenaConfig cfg;  // 1 GiB, max order 10
  std::unique_ptr<Arena> owned = make_suite_arena("pages", cfg);
  if (!owned) return 1;
  Arena& arena = *owned;
  Peers peers = load_peers();
  Suite suite = peer_suite("pages", peers, o);

  // Calls f with the adapter of subject i.
  auto with = [&](std::size_t i, auto&& f) -> double {
    if (i == 0) return f(MemdescPages{&arena});
    return f(PeerPages{&peers.loaded[i - 1]});
  };
  const bool smoke = o.smoke;
  {
    CpuPin pin;  // single-threaded cases: every subject on the same core
    suite.set_extra("pinned_cpu", pin.cpu());
    for (unsigned k = 0; k <= arena.max_order(); ++k) {
      std::size_t n = smoke ? 200 : std::max<std::size_t>(2000, std::size_t{400000} >> k);
      suite.run_case("pair_order" + std::to_string(k), [&](std::size_t i) {
        return with(i, [&](const auto& a) { return pair(a, k, n); });
      });
    }
    std::vector<void*> scratch;
    suite.run_case("bulk_1000", [&](std::size_t i) {
      return with(i, [&](const auto& a) { return bulk(a, 1000, smoke ? 2 : 300, scratch); });
    });
  }
  suite.run_case("remote_free", [&](std::size_t i) {
    return with(i, [&](const auto& a) { return remote_free(a, smoke ? 2000 : 300000); });
  });
  arena.drain_thread_cache();
  arena.validate();
  suite.set_extra("arena_bytes", arena.info().arena_bytes);
  suite.report(stdout);
  return 0;
}

}  // namespace memdesc::bench

// bench/frag_suite.cpp — the frag suite, in the shape of the kernel's page_frag_test:
//   ring_2048         2,000,000 fragments of 2048 bytes pushed through a 512-slot
//                     single-producer/single-consumer ring: allocated on one thread, freed on
//                     the other (ns per fragment)
//   ring_2048_folio   the same, with memdesc carving its fragments from order-3 folios instead
//                     of page_frag blocks (the 2023 multipage-folio proposal); the peers run
//                     their malloc again, so the ratio compares like with like
//   pair_2048         one thread: allocate a fragment, free it, repeat
// Peers get malloc(2048) / free. Nobody touches the memory: the cost is the allocator's own
// plus the ring's, which every subject pays alike.
#include "frag_suite.hpp"

#include <atomic>
#include <memdesc/memdesc.hpp>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace memdesc::bench {
namespace {

// memdesc: the producer's cache allocates, any thread frees by address.
struct MemdescFrag {
  Arena* arena;
  FragBlock kind;
  struct Producer {
    PageFragCache nc;
    void* alloc(std::size_t n) { return nc.alloc(n); }
  };
  Producer producer() const { return {arena->page_frag_cache(kind)}; }
  void free(void* p) const { arena->page_frag_free(p); }
};

struct PeerFrag {
  const Peer* peer;
  struct Producer {
    const Peer* peer;
    void* alloc(std::size_t n) const { return peer->malloc(n); }
  };
  Producer producer() const { return {peer}; }
  void free(void* p) const { peer->free(p); }
};

template <class A>
double ring(const A& a, std::size_t size, std::size_t n) {
  auto prod = a.producer();  // the producer's cache lives and dies on this thread
  return pass_through_ring(n, 512, [&] { return prod.alloc(size); }, [&](void* p) { a.free(p); });
}

template <class A>
double pair(const A& a, std::size_t size, std::size_t n) {
  auto prod = a.producer();
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    void* p = prod.alloc(size);
    escape(p);
    a.free(p);
  }
  return ns_per_op(t0, n);
}

}  // namespace

int run_frag_suite(const SuiteOptions& o) {
  std::unique_ptr<Arena> owned = make_suite_arena("frag", ArenaConfig{});
  if (!owned) return 1;
  Arena& arena = *owned;
  Peers peers = load_peers();
  Suite suite = peer_suite("frag", peers, o);
  auto with = [&](std::size_t i, FragBlock kind, auto&& f) -> double {
    if (i == 0) return f(MemdescFrag{&arena, kind});
    return f(PeerFrag{&peers.loaded[i - 1]});
  };
  const std::size_t n_ring = o.smoke ? 20000 : 2000000;
  suite.run_case("ring_2048", [&](std::size_t i) {
    return with(i, FragBlock::Frag, [&](const auto& a) { return ring(a, 2048, n_ring); });
  });
  suite.run_case("ring_2048_folio", [&](std::size_t i) {
    return with(i, FragBlock::Folio, [&](const auto& a) { return ring(a, 2048, n_ring); });
  });
  {
    CpuPin pin;
    suite.set_extra("pinned_cpu", pin.cpu());
    suite.run_case("pair_2048", [&](std::size_t i) {
      return with(i, FragBlock::Frag, [&](const auto& a) { return pair(a, 2048, o.smoke ? 2000 : 5000000); });
    });
  }
  suite.set_extra("ring_slots", 512);
  suite.set_extra("fragment_bytes", 2048);
  arena.shrink();
  arena.drain_thread_cache();
  arena.validate();
  if (arena.info().frag_blocks != 0 || arena.info().folios != 0) {
    std::fprintf(stderr, "memdesc bench frag: blocks left behind\n");
    return 1;
  }
  suite.report(stdout);
  return 0;
}

}  // namespace memdesc::bench

// bench/zs_suite.cpp — the zsmalloc suite.
//   alloc_free_S      allocate 1000 objects of S bytes, free them all (ns per pair); S = 64,
//                     512, 1192 (class 1200, straddling), 3000 and 4096 (huge)
//   write_1page / write_straddle / read_1page / read_straddle
//                     write or read a whole 1192-byte object that sits in one page, or that
//                     straddles two (zs_obj_write; zs_obj_read_begin/end), ns per object;
//                     peers memcpy into / out of a malloc'd block of the same size
//   fragmentation     store N = 200,000 compressed-size objects, free a random half, compact
//                     (memdesc) — peers store and free the same objects; ns per object.
//                     Extras: objects moved, pages freed, and `density`: pool bytes / the sum
//                     of the live objects' sizes after compaction (the bar: <= 1.03)
//   peak RSS          every subject stores the N objects in a forked child (cold heap): peak
//                     RSS growth / the sum of their sizes
// Object sizes model zram's: a page's compressed size, drawn from a fixed mixture (8 %
// incompressible, 12 % 32-499 B, 55 % 500-1999 B, 25 % 2000-4095 B); a size at or above the
// pool's huge_class_size is stored as a whole page, as zram does.
#include "zs_suite.hpp"

#include <algorithm>
#include <cstring>
#include <memdesc/memdesc.hpp>
#include <random>
#include <vector>

#include "peers.hpp"
#include "suite.hpp"

namespace memdesc::bench {
namespace {

std::vector<std::size_t> compressed_sizes(std::size_t n, std::size_t huge, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> v(n);
  for (auto& s : v) {
    unsigned u = rng() % 100;
    if (u < 8) s = kPageSize;
    else if (u < 20) s = 32 + rng() % 468;
    else if (u < 75) s = 500 + rng() % 1500;
    else s = 2000 + rng() % 2096;
    if (s >= huge) s = kPageSize;
  }
  return v;
}

// A subject stores objects: handles for memdesc, pointers for the peers.
struct ZsSubject {
  ZsPool* pool;
  std::uint64_t put(std::size_t n, const void* src) {
    ZsHandle h = pool->malloc(n).value();
    pool->write(h, src, n);
    return h;
  }
  std::uint64_t alloc(std::size_t n) { return pool->malloc(n).value(); }
  void free(std::uint64_t h) { pool->free(h); }
};

struct PeerSubject {
  const Peer* peer;
  std::uint64_t put(std::size_t n, const void* src) {
    void* p = peer->malloc(n);
    std::memcpy(p, src, n);
    return reinterpret_cast<std::uint64_t>(p);
  }
  std::uint64_t alloc(std::size_t n) { return reinterpret_cast<std::uint64_t>(peer->malloc(n)); }
  void free(std::uint64_t h) { peer->free(reinterpret_cast<void*>(h)); }
};

template <class S>
double alloc_free(S s, std::size_t size, unsigned reps) {
  std::vector<std::uint64_t> hs(1000);
  auto t0 = Clock::now();
  for (unsigned r = 0; r < reps; ++r) {
    for (auto& h : hs) h = s.alloc(size);
    for (auto h : hs) s.free(h);
  }
  return ns_per_op(t0, std::size_t{reps} * hs.size());
}

struct FragResult {
  double ns = 0;
  std::uint64_t moved = 0, pages_freed = 0, pool_bytes = 0, live_bytes = 0;
  std::uint64_t metadata_bytes = 0;  // zspage descriptors + handles
};

template <class S>
FragResult fragmentation(S s, const std::vector<std::size_t>& sizes, ZsPool* pool) {
  static const std::vector<char> src(kPageSize, 'z');
  std::vector<std::uint64_t> hs(sizes.size());
  std::vector<std::size_t> order(sizes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(11));
  FragResult r;
  std::uint64_t moved0 = pool ? pool->stats().objects_moved : 0;
  auto t0 = Clock::now();
  for (std::size_t i = 0; i < sizes.size(); ++i) hs[i] = s.put(sizes[i], src.data());
  for (std::size_t k = 0; k < order.size() / 2; ++k) s.free(hs[order[k]]);
  if (pool) r.pages_freed = pool->compact();
  r.ns = ns_per_op(t0, sizes.size());
  for (std::size_t k = order.size() / 2; k < order.size(); ++k) r.live_bytes += sizes[order[k]];
  if (pool) {
    ZsPoolStats st = pool->stats();
    r.pool_bytes = st.pages_used * kPageSize;
    r.metadata_bytes = st.descriptor_bytes + st.handle_bytes;
    r.moved = st.objects_moved - moved0;
  }
  for (std::size_t k = order.size() / 2; k < order.size(); ++k) s.free(hs[order[k]]);
  return r;
}

}  // namespace

int run_zs_suite(const SuiteOptions& o) {
  ArenaConfig cfg;
  cfg.size = std::size_t{4} << 30;
  std::unique_ptr<Arena> owned = make_suite_arena("zsmalloc", cfg);
  if (!owned) return 1;
  Arena& arena = *owned;
  auto made = arena.zs_create_pool({.name = "bench"});
  if (!made.ok()) {
    std::fprintf(stderr, "memdesc bench zsmalloc: %s\n", describe(made.error()).c_str());
    return 1;
  }
  std::unique_ptr<ZsPool> pool = std::move(made.value());
  Peers peers = load_peers();
  Suite suite = peer_suite("zsmalloc", peers, o);
  const bool smoke = o.smoke;
  const std::size_t n_frag = smoke ? 4000 : 200000;
  const std::vector<std::size_t> sizes = compressed_sizes(n_frag, pool->huge_class_size(), 5);
  std::uint64_t total_bytes = 0;
  for (std::size_t s : sizes) total_bytes += s;

  // Peak RSS first (cold heaps): each subject stores every object in a forked child.
  std::vector<std::string> names{"memdesc"};
  for (const Peer& p : peers.loaded) names.push_back(p.name);
  std::vector<double> peak(names.size(), 0);
  for (std::size_t i = 0; i < names.size(); ++i) {
    ChildResult c = in_child([&] {
      static const std::vector<char> src(kPageSize, 'r');
      auto t0 = Clock::now();
      if (i == 0) {
        ZsSubject s{pool.get()};
        for (std::size_t sz : sizes) s.put(sz, src.data());  // the child exits with them
      } else {
        PeerSubject s{&peers.loaded[i - 1]};
        for (std::size_t sz : sizes) s.put(sz, src.data());
      }
      return ns_per_op(t0, sizes.size());
    });
    peak[i] = c.peak_rss;
  }

  auto with = [&](std::size_t i, auto&& f) -> double {
    if (i == 0) return f(ZsSubject{pool.get()});
    return f(PeerSubject{&peers.loaded[i - 1]});
  };
  {
    CpuPin pin;
    suite.set_extra("pinned_cpu", pin.cpu());
    for (std::size_t size : {64, 512, 1192, 3000, 4096})
      suite.run_case("alloc_free_" + std::to_string(size), [&](std::size_t i) {
        return with(i, [&](auto s) { return alloc_free(s, size, smoke ? 2 : 500); });
      });

    // Access: 1192-byte objects (class 1200), split into those in one page and those that straddle.
    std::vector<ZsHandle> one, straddle;
    std::vector<char> buf(1192), data(1192, 'a');
    std::vector<ZsHandle> all;
    for (int k = 0; k < 17 * 200; ++k) {
      ZsHandle h = pool->malloc(1192).value();
      all.push_back(h);
      const void* m = pool->read_begin(h, buf.data(), 1192);
      (m == buf.data() ? straddle : one).push_back(h);
      pool->read_end(h, m);
    }
    std::vector<void*> blocks;
    for (const Peer& p : peers.loaded) blocks.push_back(p.malloc(1192));
    const unsigned passes = smoke ? 2 : 2000;
    auto access = [&](const char* name, bool write, std::vector<ZsHandle>& hs) {
      suite.run_case(name, [&](std::size_t i) {
        std::size_t n = std::min<std::size_t>(hs.size(), 512);
        auto t0 = Clock::now();
        for (unsigned r = 0; r < passes; ++r)
          for (std::size_t k = 0; k < n; ++k) {
            if (i == 0) {
              if (write) {
                pool->write(hs[k], data.data(), 1192);
              } else {
                const void* m = pool->read_begin(hs[k], buf.data(), 1192);
                escape(const_cast<void*>(m));
                pool->read_end(hs[k], m);
              }
            } else if (write) {
              std::memcpy(blocks[i - 1], data.data(), 1192);
              escape(blocks[i - 1]);
            } else {
              std::memcpy(buf.data(), blocks[i - 1], 1192);
              escape(buf.data());
            }
          }
        return ns_per_op(t0, std::size_t{passes} * n);
      });
    };
    access("write_1page", true, one);
    access("write_straddle", true, straddle);
    access("read_1page", false, one);
    access("read_straddle", false, straddle);
    for (ZsHandle h : all) pool->free(h);
    for (std::size_t k = 0; k < blocks.size(); ++k) peers.loaded[k].free(blocks[k]);
  }

  std::vector<FragResult> frag;
  suite.run_case("fragmentation", [&](std::size_t i) {
    if (i == 0) {
      FragResult r = fragmentation(ZsSubject{pool.get()}, sizes, pool.get());
      frag.push_back(r);
      return r.ns;
    }
    return fragmentation(PeerSubject{&peers.loaded[i - 1]}, sizes, nullptr).ns;
  });

  // Density after compaction: median over rounds.
  std::sort(frag.begin(), frag.end(), [](const FragResult& a, const FragResult& b) {
    return a.pool_bytes * b.live_bytes < b.pool_bytes * a.live_bytes;
  });
  FragResult med = frag.empty() ? FragResult{} : frag[frag.size() / 2];
  double density = med.live_bytes ? static_cast<double>(med.pool_bytes) / static_cast<double>(med.live_bytes) : 0;
  nlohmann::json peaks = nlohmann::json::object(), pdens = nlohmann::json::object();
  double best = 0;
  std::string best_name;
  for (std::size_t i = 0; i < names.size(); ++i) {
    peaks[names[i]] = peak[i];
    pdens[names[i]] = peak[i] / static_cast<double>(total_bytes);
    if (i > 0 && peak[i] > 0 && (best_name.empty() || peak[i] < best)) best = peak[i], best_name = names[i];
  }
  suite.set_extra("density", density);
  suite.set_extra("fragmentation", {{"objects", n_frag},
                                    {"objects_moved", med.moved},
                                    {"pages_freed", med.pages_freed},
                                    {"pool_bytes_after_compaction", med.pool_bytes},
                                    {"descriptor_and_handle_bytes", med.metadata_bytes},
                                    {"density_with_metadata", med.live_bytes ? static_cast<double>(med.pool_bytes + med.metadata_bytes) / static_cast<double>(med.live_bytes) : 0.0},
                                    {"live_object_bytes", med.live_bytes}});
  suite.set_extra("peak_rss_bytes", {{"case", "store every object (forked child per subject)"},
                                     {"object_bytes", total_bytes},
                                     {"growth", peaks},
                                     {"growth_per_object_byte", pdens},
                                     {"vs_best_peer", best > 0 ? peak[0] / best : 0.0},
                                     {"best_peer", best_name}});
  pool->validate();
  if (pool->stats().objects != 0) {
    std::fprintf(stderr, "memdesc bench zsmalloc: objects left behind\n");
    return 1;
  }
  pool.reset();
  arena.shrink();
  arena.validate();
  suite.report(stdout);
  if (!o.json) {
    std::printf("\ndensity after compaction (pool bytes / live object bytes): %.4f (%.4f with descriptors and handles); "
                "%llu objects moved, %llu pages freed\n",
                density, med.live_bytes ? static_cast<double>(med.pool_bytes + med.metadata_bytes) / static_cast<double>(med.live_bytes) : 0.0, static_cast<unsigned long long>(med.moved), static_cast<unsigned long long>(med.pages_freed));
    std::printf("peak RSS growth storing %zu objects (%.1f MiB):", sizes.size(), static_cast<double>(total_bytes) / 1048576.0);
    for (std::size_t i = 0; i < names.size(); ++i) std::printf(" %s %.1f MiB", names[i].c_str(), peak[i] / 1048576.0);
    std::printf("; memdesc / best peer %.3f (%s)\n", best > 0 ? peak[0] / best : 0.0, best_name.c_str());
  }
  return 0;
}

}  // namespace memdesc::bench

// tools/demo.cpp — `memdesc demo`: a page-allocation workload on an in-process arena.
//
// Phases: (1) fill — each thread takes mixed-order blocks (some movable) until the threads hold
// fill_fraction of the arena, writing a pattern into every page; (2) churn — random frees and
// allocations, a share of blocks handed to the other thread to check and free; then the state
// (fragmented, near the peak) is reported and drawn; (3) release — everything freed and checked, caches drained, the arena
// validated, free memory purged so RSS falls.
#include "demo.hpp"

#include <atomic>
#include <cstdio>
#include <deque>
#include <memdesc/memdesc.hpp>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "report.hpp"

namespace memdesc::tools {
namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  void* p;
  std::uint64_t tag;
};

std::uint64_t pattern(std::uint64_t tag, std::uint64_t i) { return tag * 0x9E3779B97F4A7C15ull + i; }

void fill(void* p, unsigned order, std::uint64_t tag) {
  auto* w = static_cast<std::uint64_t*>(p);
  for (std::size_t i = 0; i < (kPageSize << order) / 8; i += 64) w[i] = pattern(tag, i);  // a word per 512 B
}

bool check(const void* p, unsigned order, std::uint64_t tag) {
  auto* w = static_cast<const std::uint64_t*>(p);
  for (std::size_t i = 0; i < (kPageSize << order) / 8; i += 64)
    if (w[i] != pattern(tag, i)) return false;
  return true;
}

unsigned pick_order(std::mt19937_64& rng, unsigned max_order) {
  // Mostly small blocks, occasionally large: P(order k) ~ 2^-(k+1).
  unsigned k = static_cast<unsigned>(std::countr_zero(rng() | (1ull << 20)));
  return std::min(k, max_order);
}

}  // namespace

int run_demo(const DemoOptions& o) {
  ArenaConfig cfg;
  cfg.size = o.arena_bytes;
  auto created = Arena::create(cfg);
  if (!created.ok()) {
    std::fprintf(stderr, "memdesc demo: cannot create the arena: %s\n", describe(created.error()).c_str());
    return 1;
  }
  Arena& a = *created.value();
  const unsigned nthreads = std::max(1u, o.threads);
  const std::uint64_t target_pages = static_cast<std::uint64_t>(static_cast<double>(a.pages()) * o.fill_fraction);

  struct Mailbox {
    std::mutex m;
    std::deque<Held> q;
  };
  std::vector<Mailbox> boxes(nthreads);
  std::atomic<std::uint64_t> held_pages{0}, allocs{0}, frees{0}, remote_frees{0}, failures{0}, corrupt{0};
  std::atomic<unsigned> at_peak{0};
  std::atomic<bool> snapshot_done{false};
  ArenaInfo peak_info;
  std::string png_error;

  auto free_checked = [&](const Held& h) {
    unsigned order = a.virt_to_memdesc(h.p)->order();
    if (!check(h.p, order, h.tag)) corrupt.fetch_add(1);
    a.free_pages(h.p);
    held_pages.fetch_sub(1u << order);
    frees.fetch_add(1, std::memory_order_relaxed);
  };

  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < nthreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(0xD3E0 + t);
      std::vector<Held> held;
      std::uint64_t tag = std::uint64_t{t + 1} << 48;
      auto take = [&] {
        unsigned order = pick_order(rng, a.max_order());
        void* p = a.alloc_pages(order, (rng() % 4 == 0) ? GFP_MOVABLE : GFP_NONE);
        if (!p) {
          failures.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        fill(p, order, ++tag);
        held.push_back({p, tag});
        held_pages.fetch_add(1u << order);
        allocs.fetch_add(1, std::memory_order_relaxed);
      };
      // (1) fill
      while (held_pages.load(std::memory_order_relaxed) < target_pages && failures.load() < 1000) take();
      // (2) churn
      for (unsigned i = 0; i < o.ops_per_thread; ++i) {
        unsigned r = static_cast<unsigned>(rng() % 100);
        if (held.empty() || (r < 48 && held_pages.load(std::memory_order_relaxed) < target_pages)) {
          take();
        } else if (r < 90 || nthreads == 1) {
          std::size_t k = rng() % held.size();
          free_checked(held[k]);
          held[k] = held.back();
          held.pop_back();
        } else {
          std::size_t k = rng() % held.size();
          {
            std::lock_guard<std::mutex> g(boxes[(t + 1) % nthreads].m);
            boxes[(t + 1) % nthreads].q.push_back(held[k]);
          }
          held[k] = held.back();
          held.pop_back();
        }
        if (i % 256 == 0) {
          std::deque<Held> in;
          {
            std::lock_guard<std::mutex> g(boxes[t].m);
            in.swap(boxes[t].q);
          }
          for (const Held& h : in) free_checked(h), remote_frees.fetch_add(1, std::memory_order_relaxed);
        }
      }
      // Peak, after the churn: the last thread to arrive takes the snapshot and draws the
      // picture while the others wait.
      if (at_peak.fetch_add(1) + 1 == nthreads) {
        peak_info = a.info();
        if (!o.png.empty()) png_error = write_arena_png(a, o.png);
        snapshot_done.store(true);
      }
      while (!snapshot_done.load()) std::this_thread::yield();
      // (3) release
      for (const Held& h : held) free_checked(h);
    });
  for (auto& th : threads) th.join();
  for (auto& mb : boxes)
    for (const Held& h : mb.q) free_checked(h), remote_frees.fetch_add(1, std::memory_order_relaxed);
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  a.drain_thread_cache();
  a.validate();  // fatal report if any invariant is broken
  ArenaInfo before_purge = a.info();
  auto purged = a.purge(0);
  ArenaInfo after = a.info();
  bool ok = corrupt.load() == 0 && after.free_pages == after.pages && purged.ok() && png_error.empty();

  std::uint64_t ops = allocs.load() + frees.load();
  if (o.json) {
    nlohmann::json j = info_json(peak_info);  // the arena after the churn
    j["workload"] = {{"threads", nthreads},
                     {"allocations", allocs.load()},
                     {"frees", frees.load()},
                     {"remote_frees", remote_frees.load()},
                     {"failed_allocations", failures.load()},
                     {"corrupted_blocks", corrupt.load()},
                     {"seconds", seconds},
                     {"ops_per_second", static_cast<double>(ops) / seconds}};
    j["after_release"] = {{"free_pages", after.free_pages},
                          {"rss_bytes_before_purge", before_purge.rss_bytes},
                          {"rss_bytes_after_purge", after.rss_bytes},
                          {"purged_bytes", purged.ok() ? purged.value() : 0}};
    j["picture"] = o.png;
    j["ok"] = ok;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("memdesc demo: %u threads on a %s arena\n\n", nthreads, human_bytes(static_cast<double>(a.pages() * kPageSize)).c_str());
    std::printf("workload     %llu allocations + %llu frees (%llu freed by the other thread) in %.2f s = %.1f M ops/s;\n"
                "             %llu allocations found the arena full; %llu blocks with a damaged pattern\n\n",
                static_cast<unsigned long long>(allocs.load()), static_cast<unsigned long long>(frees.load()),
                static_cast<unsigned long long>(remote_frees.load()), seconds, static_cast<double>(ops) / seconds / 1e6,
                static_cast<unsigned long long>(failures.load()), static_cast<unsigned long long>(corrupt.load()));
    std::printf("After the churn (the threads hold up to %.0f%% of the arena):\n", o.fill_fraction * 100);
    print_info(stdout, peak_info);
    std::printf("\n");
    print_buddyinfo(stdout, peak_info);
    std::printf("\nAfter releasing everything: %llu of %llu pages free, arena validated;\n"
                "purge returned %s to the OS: RSS %s -> %s\n",
                static_cast<unsigned long long>(after.free_pages), static_cast<unsigned long long>(after.pages),
                human_bytes(purged.ok() ? static_cast<double>(purged.value()) : 0).c_str(),
                human_bytes(static_cast<double>(before_purge.rss_bytes)).c_str(),
                human_bytes(static_cast<double>(after.rss_bytes)).c_str());
    if (!o.png.empty()) {
      if (png_error.empty()) std::printf("\nwrote %s (the arena after the churn)\n", o.png.c_str());
      else std::printf("\npicture: %s\n", png_error.c_str());
      print_png_legend(stdout);
    }
    std::printf("\n%s\n", ok ? "demo: OK" : "demo: FAILED");
  }
  return ok ? 0 : 1;
}

}  // namespace memdesc::tools

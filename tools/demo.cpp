// tools/demo.cpp — `memdesc demo`: a page-allocation workload on an in-process arena.
//
// Phases: (1) fill — each thread takes mixed-order blocks (some movable; a share of them folios
// of orders 3 and up, about 1 % of the arena) until the threads hold fill_fraction of the
// arena, writing a pattern into every page, and small objects of mixed sizes (patterned at
// both ends; kmalloc, a quarter of the small ones page fragments) until they hold 1 % of the
// arena; (2) churn — random frees and
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
#include <cstring>
#include <vector>

#include "report.hpp"

namespace memdesc::tools {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind : std::uint8_t { Pages, Object, Folio, Frag };

struct Held {
  void* p;
  std::uint64_t tag;
  std::uint32_t size;  // bytes of an Object or Frag; page blocks and folios: their order is in the word
  Kind kind;
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

// kmalloc object contents: a pattern word at the start and at the end.
void fill_obj(void* p, std::uint32_t size, std::uint64_t tag) {
  std::memcpy(p, &tag, 8);
  std::uint64_t t2 = ~tag;
  std::memcpy(static_cast<char*>(p) + size - 8, &t2, 8);
}

bool check_obj(const void* p, std::uint32_t size, std::uint64_t tag) {
  std::uint64_t a, b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, static_cast<const char*>(p) + size - 8, 8);
  return a == tag && b == ~tag;
}

// Sizes as a kernel sees them: mostly small, a tail of large ones (some above 8 KiB).
std::uint32_t pick_size(std::mt19937_64& rng) {
  std::uint64_t r = rng() % 100;
  if (r < 60) return static_cast<std::uint32_t>(16 + rng() % 240);  // >= 16: room for both pattern words
  if (r < 90) return static_cast<std::uint32_t>(256 + rng() % 1792);
  if (r < 99) return static_cast<std::uint32_t>(2048 + rng() % 6144);
  return static_cast<std::uint32_t>(8192 + rng() % 24576);
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
  const std::uint64_t target_kbytes = a.pages() * kPageSize / 100;  // kmalloc: 1 % of the arena

  struct Mailbox {
    std::mutex m;
    std::deque<Held> q;
  };
  std::vector<Mailbox> boxes(nthreads);
  const std::uint64_t target_folio_pages = a.pages() / 100;  // folios: 1 % of the arena
  std::atomic<std::uint64_t> held_pages{0}, held_kbytes{0}, allocs{0}, frees{0}, remote_frees{0}, failures{0},
      corrupt{0}, kmallocs{0}, folio_pages{0}, folios{0}, frags{0}, lookups{0};
  std::atomic<unsigned> at_peak{0};
  std::atomic<bool> snapshot_done{false};
  ArenaInfo peak_info;
  std::vector<SlabCacheInfo> peak_slabs;
  std::string png_error;

  auto free_checked = [&](const Held& h) {
    if (h.kind == Kind::Object || h.kind == Kind::Frag) {
      if (!check_obj(h.p, h.size, h.tag)) corrupt.fetch_add(1);
      if (h.kind == Kind::Object) a.kfree(h.p);
      else a.page_frag_free(h.p);
      held_kbytes.fetch_sub(h.size);
    } else {
      unsigned order = a.virt_to_memdesc(h.p)->order();
      if (!check(h.p, order, h.tag)) corrupt.fetch_add(1);
      if (h.kind == Kind::Folio) {
        // The lockless lookup from the folio's last page must find this very folio.
        Folio* f = a.page_folio(h.p);
        Folio* g = a.folio_lookup(static_cast<char*>(h.p) + ((kPageSize << order) - 1));
        if (!f || g != f) corrupt.fetch_add(1);
        if (g) a.folio_put(g);
        lookups.fetch_add(1, std::memory_order_relaxed);
        if (f) a.folio_put(f);
        folio_pages.fetch_sub(1u << order);
      } else {
        a.free_pages(h.p);
      }
      held_pages.fetch_sub(1u << order);
    }
    frees.fetch_add(1, std::memory_order_relaxed);
  };

  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < nthreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(0xD3E0 + t);
      std::vector<Held> held;
      std::uint64_t tag = std::uint64_t{t + 1} << 48;
      PageFragCache frag_cache = a.page_frag_cache();
      auto take_obj = [&] {
        std::uint32_t size = pick_size(rng);
        bool as_frag = size <= 2048 && rng() % 4 == 0;
        void* p = as_frag ? frag_cache.alloc_align(size, 8) : a.kmalloc(size);
        if (!p) {
          failures.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        fill_obj(p, size, ++tag);
        held.push_back({p, tag, size, as_frag ? Kind::Frag : Kind::Object});
        held_kbytes.fetch_add(size);
        allocs.fetch_add(1, std::memory_order_relaxed);
        (as_frag ? frags : kmallocs).fetch_add(1, std::memory_order_relaxed);
      };
      auto take = [&] {
        if (held_kbytes.load(std::memory_order_relaxed) < target_kbytes && (rng() & 1)) return take_obj();
        bool as_folio = folio_pages.load(std::memory_order_relaxed) < target_folio_pages && rng() % 4 == 0;
        // Folios of orders 3 and up, as a page cache's large folios: P(order 3 + k) ~ 2^-(k+1).
        unsigned order = as_folio ? std::min(a.max_order(), 3 + pick_order(rng, a.max_order()))
                                  : pick_order(rng, a.max_order());
        void* p = nullptr;
        if (as_folio) {
          Folio* f = a.folio_alloc(order, GFP_NONE, rng() % 2 ? FolioKind::Anon : FolioKind::File);
          p = f ? a.folio_address(f) : nullptr;
        } else {
          p = a.alloc_pages(order, (rng() % 4 == 0) ? GFP_MOVABLE : GFP_NONE);
        }
        if (!p) {
          failures.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        fill(p, order, ++tag);
        held.push_back({p, tag, 0, as_folio ? Kind::Folio : Kind::Pages});
        held_pages.fetch_add(1u << order);
        if (as_folio) {
          folio_pages.fetch_add(1u << order);
          folios.fetch_add(1, std::memory_order_relaxed);
        }
        allocs.fetch_add(1, std::memory_order_relaxed);
      };
      // (1) fill
      while ((held_pages.load(std::memory_order_relaxed) < target_pages ||
              held_kbytes.load(std::memory_order_relaxed) < target_kbytes) &&
             failures.load() < 1000)
        take();
      // (2) churn
      for (unsigned i = 0; i < o.ops_per_thread; ++i) {
        unsigned r = static_cast<unsigned>(rng() % 100);
        if (held.empty() || (r < 48 && (held_pages.load(std::memory_order_relaxed) < target_pages ||
                                         held_kbytes.load(std::memory_order_relaxed) < target_kbytes))) {
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
        peak_slabs = a.slabinfo();
        if (!o.png.empty()) png_error = write_arena_png(a, o.png);
        snapshot_done.store(true);
      }
      while (!snapshot_done.load()) std::this_thread::yield();
      // (3) release
      for (const Held& h : held) free_checked(h);
      frag_cache.drain();
    });
  for (auto& th : threads) th.join();
  for (auto& mb : boxes)
    for (const Held& h : mb.q) free_checked(h), remote_frees.fetch_add(1, std::memory_order_relaxed);
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  a.shrink();  // empty slabs back to the buddy
  a.drain_thread_cache();
  a.validate();  // fatal report if any invariant is broken
  ArenaInfo before_purge = a.info();
  auto purged = a.purge(0);
  ArenaInfo after = a.info();
  bool ok = corrupt.load() == 0 && after.free_pages == after.pages && after.folios == 0 && after.frag_blocks == 0 &&
            purged.ok() && png_error.empty();

  std::uint64_t ops = allocs.load() + frees.load();
  if (o.json) {
    nlohmann::json j = info_json(peak_info);  // the arena after the churn
    j["workload"] = {{"threads", nthreads},
                     {"allocations", allocs.load()},
                     {"frees", frees.load()},
                     {"remote_frees", remote_frees.load()},
                     {"failed_allocations", failures.load()},
                     {"kmallocs", kmallocs.load()},
                     {"folios", folios.load()},
                     {"page_frags", frags.load()},
                     {"folio_lookups", lookups.load()},
                     {"corrupted_blocks", corrupt.load()},
                     {"seconds", seconds},
                     {"ops_per_second", static_cast<double>(ops) / seconds}};
    j["after_release"] = {{"free_pages", after.free_pages},
                          {"rss_bytes_before_purge", before_purge.rss_bytes},
                          {"rss_bytes_after_purge", after.rss_bytes},
                          {"purged_bytes", purged.ok() ? purged.value() : 0}};
    j["slabinfo"] = slabinfo_json(peak_slabs);
    j["picture"] = o.png;
    j["ok"] = ok;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("memdesc demo: %u threads on a %s arena\n\n", nthreads, human_bytes(static_cast<double>(a.pages() * kPageSize)).c_str());
    std::printf("workload     %llu allocations (%llu kmalloc, %llu folios, %llu page fragments) + %llu frees\n"
                "             (%llu freed by the other thread; %llu folio lookups)\n"
                "             in %.2f s = %.1f M ops/s; %llu allocations found the arena full; %llu damaged patterns\n\n",
                static_cast<unsigned long long>(allocs.load()), static_cast<unsigned long long>(kmallocs.load()),
                static_cast<unsigned long long>(folios.load()), static_cast<unsigned long long>(frags.load()),
                static_cast<unsigned long long>(frees.load()),
                static_cast<unsigned long long>(remote_frees.load()), static_cast<unsigned long long>(lookups.load()),
                seconds, static_cast<double>(ops) / seconds / 1e6,
                static_cast<unsigned long long>(failures.load()), static_cast<unsigned long long>(corrupt.load()));
    std::printf("After the churn (the threads hold up to %.0f%% of the arena):\n", o.fill_fraction * 100);
    print_info(stdout, peak_info);
    std::printf("\n");
    print_buddyinfo(stdout, peak_info);
    std::printf("\n");
    print_slabinfo(stdout, peak_slabs, false);
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

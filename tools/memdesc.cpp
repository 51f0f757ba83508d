// tools/memdesc.cpp — the memdesc command.
//
//   memdesc info [--arena SIZE] [--json]          arena size, pages, metadata by kind, init, RSS
//   memdesc buddyinfo [--arena SIZE] [--load P]   free blocks per order and zone
//   memdesc slabinfo [--load N] [--all] [--json]  object caches, like /proc/slabinfo
//   memdesc types [--json]                        the type table of the memdesc word
//   memdesc demo [--arena SIZE] [--threads N] [--png FILE] [--json]
//   memdesc zsmalloc classes [--chain N] [--json]  the size-class table, checked against the kernel's
//   memdesc zsmalloc stats [--objects N] [--json]  per-class statistics before and after compaction
//   memdesc zram FILE... [--algo lz4|zstd] [--json] store, read back, compare, compact; mm_stat
//   memdesc bench pages|kmalloc|frag|zsmalloc [--smoke] [--json] [--rounds N]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memdesc/memdesc.hpp>
#include <random>
#include <vector>

#include "demo.hpp"
#if MEMDESC_HAVE_BENCH
#include "frag_suite.hpp"
#include "kmalloc_suite.hpp"
#include "pages_suite.hpp"
#include "zs_suite.hpp"
#include "peers.hpp"
#endif
#include "report.hpp"
#include "zs_tools.hpp"

using namespace memdesc;
using namespace memdesc::tools;

namespace {

// Holds `percent` of the arena in mixed-order blocks, then frees every other one, so buddyinfo
// has something to show. Returns the blocks still held.
std::vector<void*> load_arena(Arena& a, unsigned percent) {
  std::vector<void*> held;
  std::mt19937_64 rng(42);
  std::uint64_t target = a.pages() * percent / 100, pages = 0;
  while (pages < target) {
    unsigned order = std::min<unsigned>(a.max_order(), static_cast<unsigned>(std::countr_zero(rng() | 1u << 12)));
    void* p = a.alloc_pages(order, (rng() & 3) == 0 ? GFP_MOVABLE : GFP_NONE);
    if (!p) break;
    held.push_back(p);
    pages += 1u << order;
  }
  std::vector<void*> kept;
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i % 2) a.free_pages(held[i]);
    else kept.push_back(held[i]);
  }
  a.drain_thread_cache();
  return kept;
}

}  // namespace

int main(int argc, char** argv) {
#if MEMDESC_HAVE_BENCH
  // Only `memdesc bench` loads the peers; re-executing costs it a millisecond.
  if (argc > 1 && std::string(argv[1]) == "bench") bench::ensure_static_tls_for_peers(argv);
#endif
  CLI::App app{"memdesc: a memory manager built on memory descriptors (one 8-byte word per 4 KiB page)"};
  app.require_subcommand(1);

  std::string arena_size = "1G";
  bool json = false;

  auto* info = app.add_subcommand("info", "create an arena and print its size, metadata bytes by kind, init time and RSS");
  info->add_option("--arena", arena_size, "arena size (e.g. 1G, 64G, 1T)")->capture_default_str();
  info->add_flag("--json", json, "print JSON");

  unsigned load = 0;
  auto* buddy = app.add_subcommand("buddyinfo", "print free blocks per order and zone, like /proc/buddyinfo");
  buddy->add_option("--arena", arena_size, "arena size")->capture_default_str();
  buddy->add_option("--load", load, "first hold this percentage of the arena in mixed blocks, freeing every other one")
      ->check(CLI::Range(0u, 100u));
  buddy->add_flag("--json", json, "print JSON");

  unsigned objects = 0;
  bool all_caches = false;
  auto* slabinfo = app.add_subcommand("slabinfo", "print the object caches like /proc/slabinfo");
  slabinfo->add_option("--arena", arena_size, "arena size")->capture_default_str();
  slabinfo->add_option("--load", objects, "first kmalloc this many objects of mixed sizes, freeing every other one");
  slabinfo->add_flag("--all", all_caches, "list idle caches too");
  slabinfo->add_flag("--json", json, "print JSON");

  auto* types = app.add_subcommand("types", "print the memdesc type table the page word is generated from");
  types->add_flag("--json", json, "print JSON");

  DemoOptions demo_opts;
  std::string demo_arena = "1G";
  auto* demo = app.add_subcommand("demo", "run a mixed page-allocation workload on an in-process arena and report");
  demo->add_option("--arena", demo_arena, "arena size")->capture_default_str();
  demo->add_option("--threads", demo_opts.threads, "worker threads")->capture_default_str()->check(CLI::Range(1u, 64u));
  demo->add_option("--ops", demo_opts.ops_per_thread, "churn operations per thread")->capture_default_str();
  bool no_png = false;
  demo->add_option("--png", demo_opts.png, "where to draw the arena after the churn")->capture_default_str();
  demo->add_flag("--no-png", no_png, "draw no picture");
  demo->add_flag("--json", demo_opts.json, "print JSON");

  unsigned zs_chain = kZsDefaultChain, zs_objects = 100000;
  auto* zs = app.add_subcommand("zsmalloc", "zsmalloc: the size-class table, per-class statistics");
  zs->require_subcommand(1);
  auto* zs_classes = zs->add_subcommand("classes", "print the class table and check it against the kernel documentation's");
  zs_classes->add_option("--chain", zs_chain, "pages a zspage may chain")->capture_default_str()->check(CLI::Range(4u, 16u));
  zs_classes->add_flag("--json", json, "print JSON");
  auto* zs_stats = zs->add_subcommand("stats", "fill a pool, free half, print class statistics before and after compaction");
  zs_stats->add_option("--objects", zs_objects, "objects to allocate")->capture_default_str();
  zs_stats->add_flag("--json", json, "print JSON");

  std::vector<std::string> zram_files;
  std::string zram_algo = "lz4";
  auto* zram = app.add_subcommand("zram", "store files page by page in a compressed page store, read back, compare, compact");
  zram->add_option("files", zram_files, "files to store")->required()->check(CLI::ExistingFile);
  zram->add_option("--algo", zram_algo, "lz4 or zstd")->capture_default_str()->check(CLI::IsMember({"lz4", "zstd"}));
  zram->add_flag("--json", json, "print JSON");

#if MEMDESC_HAVE_BENCH
  bench::SuiteOptions bench_opts;
  auto* bench_cmd = app.add_subcommand("bench", "run a benchmark suite against glibc, jemalloc, tcmalloc and mimalloc");
  bench_cmd->require_subcommand(1);
  auto* bench_pages = bench_cmd->add_subcommand("pages", "page allocation: pairs per order, bulk, remote free");
  auto* bench_kmalloc = bench_cmd->add_subcommand("kmalloc", "kmalloc/kfree: pairs, bulk, larson, xmalloc, alloc-test, glibc-thread");
  auto* bench_frag = bench_cmd->add_subcommand("frag", "page_frag: producer/consumer ring (frag and folio blocks), pairs");
  auto* bench_zs = bench_cmd->add_subcommand("zsmalloc", "zsmalloc: alloc/free per class, read/write, fragmentation + compaction, density");
  for (auto* b : {bench_pages, bench_kmalloc, bench_frag, bench_zs}) {
    b->add_flag("--smoke", bench_opts.smoke, "tiny sizes and one round: checks that the suite runs");
    b->add_flag("--json", bench_opts.json, "print JSON");
    b->add_option("--rounds", bench_opts.rounds, "interleaved rounds per case")->capture_default_str();
    b->add_option("--only", bench_opts.only, "run only the cases whose name contains this");
  }
#endif

  CLI11_PARSE(app, argc, argv);

  try {
    if (*info) {
      auto a = make_arena_or_die(parse_size(arena_size));
      ArenaInfo i = a->info();
      if (json) std::printf("%s\n", info_json(i).dump(2).c_str());
      else print_info(stdout, i);
      return 0;
    }
    if (*buddy) {
      auto a = make_arena_or_die(parse_size(arena_size));
      std::vector<void*> held = load_arena(*a, load);
      ArenaInfo i = a->info();
      if (json) std::printf("%s\n", nlohmann::json{{"zones", buddyinfo_json(i)}, {"max_order", i.max_order}}.dump(2).c_str());
      else print_buddyinfo(stdout, i);
      for (void* p : held) a->free_pages(p);
      return 0;
    }
    if (*slabinfo) {
      auto a = make_arena_or_die(parse_size(arena_size));
      std::vector<void*> held;
      std::mt19937_64 rng(42);
      for (unsigned i = 0; i < objects; ++i) {
        void* p = a->kmalloc(8 + (rng() % 8 == 0 ? rng() % 8192 : rng() % 512));
        if (!p) break;
        if (i % 2) a->kfree(p);
        else held.push_back(p);
      }
      auto caches = a->slabinfo();
      if (json) std::printf("%s\n", nlohmann::json{{"caches", slabinfo_json(caches)}}.dump(2).c_str());
      else print_slabinfo(stdout, caches, all_caches || objects == 0);
      for (void* p : held) a->kfree(p);
      return 0;
    }
    if (*types) {
      nlohmann::json j = nlohmann::json::array();
      for (unsigned t = 0; t < kMemdescTypeCount; ++t) {
        if (!type_is_assigned(t)) continue;
        auto ty = static_cast<MemdescType>(t);
        j.push_back({{"tag", t}, {"name", type_name(ty)}, {"descriptor", type_has_pointer(ty)},
                     {"description", type_description(ty)}});
        if (!json)
          std::printf("%2u  %-10s %-10s %s\n", t, type_name(ty), type_has_pointer(ty) ? "descriptor" : "inline",
                      type_description(ty));
      }
      if (json) std::printf("%s\n", j.dump(2).c_str());
      else std::printf("13-15  unassigned\n");
      return 0;
    }
    if (*zs_classes) return run_zs_classes(zs_chain, json);
    if (*zs_stats) return run_zs_stats(zs_objects, json);
    if (*zram) return run_zram(zram_files, zram_algo, json);
    if (*demo) {
      demo_opts.arena_bytes = parse_size(demo_arena);
      if (no_png) demo_opts.png.clear();
      return run_demo(demo_opts);
    }
#if MEMDESC_HAVE_BENCH
    if (*bench_pages) return bench::run_pages_suite(bench_opts);
    if (*bench_kmalloc) return bench::run_kmalloc_suite(bench_opts);
    if (*bench_frag) return bench::run_frag_suite(bench_opts);
    if (*bench_zs) return bench::run_zs_suite(bench_opts);
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "memdesc: %s\n", e.what());
    return 2;
  }
  return 0;
}

// tools/zs_tools.cpp — `memdesc zsmalloc classes|stats` and `memdesc zram FILE...`.
#include "zs_tools.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memdesc/zram.hpp>
#include <random>

#include "report.hpp"

namespace memdesc::tools {

namespace {

// Documentation/mm/zsmalloc.rst: distinct classes and huge watermark per chain size.
struct Reference {
  unsigned chain, classes, watermark;
};
constexpr Reference kReference[] = {{4, 69, 3264}, {5, 86, 3408}, {8, 123, 3632}, {12, 164, 3776}, {16, 191, 3840}};

nlohmann::json class_stats_json(const std::vector<ZsClassStats>& v) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : v) {
    if (c.obj_allocated == 0) continue;
    j.push_back({{"index", c.index}, {"size", c.size}, {"huge", c.huge},
                 {"zspages_by_fullness", std::vector<std::uint64_t>(std::begin(c.zspages), std::end(c.zspages))},
                 {"obj_allocated", c.obj_allocated}, {"obj_used", c.obj_used}, {"pages_used", c.pages_used},
                 {"pages_per_zspage", c.pages_per_zspage}, {"freeable", c.freeable}});
  }
  return j;
}

void print_class_stats(std::FILE* out, const std::vector<ZsClassStats>& v) {
  std::fprintf(out, "%5s %5s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %4s %10s %10s %9s %4s %8s\n", "class", "size",
               "0%", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%", "obj_alloc", "obj_used",
               "pages", "ppz", "freeable");
  ZsClassStats total;
  for (const auto& c : v) {
    if (c.obj_allocated == 0) continue;
    std::fprintf(out, "%5u %5u", c.index, c.size);
    for (unsigned g = 0; g < kZsFullnessGroups; ++g) {
      std::fprintf(out, " %4llu", static_cast<unsigned long long>(c.zspages[g]));
      total.zspages[g] += c.zspages[g];
    }
    std::fprintf(out, " %10llu %10llu %9llu %4u %8llu\n", static_cast<unsigned long long>(c.obj_allocated),
                 static_cast<unsigned long long>(c.obj_used), static_cast<unsigned long long>(c.pages_used),
                 c.pages_per_zspage, static_cast<unsigned long long>(c.freeable));
    total.obj_allocated += c.obj_allocated, total.obj_used += c.obj_used;
    total.pages_used += c.pages_used, total.freeable += c.freeable;
  }
  std::fprintf(out, "%5s %5s", "Total", "");
  for (unsigned g = 0; g < kZsFullnessGroups; ++g) std::fprintf(out, " %4llu", static_cast<unsigned long long>(total.zspages[g]));
  std::fprintf(out, " %10llu %10llu %9llu %4s %8llu\n", static_cast<unsigned long long>(total.obj_allocated),
               static_cast<unsigned long long>(total.obj_used), static_cast<unsigned long long>(total.pages_used), "",
               static_cast<unsigned long long>(total.freeable));
}

}  // namespace

int run_zs_classes(unsigned chain, bool json) {
  ZsClassTable t = zs_class_table(chain);
  nlohmann::json summary = nlohmann::json::array();
  bool all_match = true;
  for (const Reference& r : kReference) {
    ZsClassTable x = zs_class_table(r.chain);
    bool match = x.classes.size() == r.classes && x.huge_watermark == r.watermark;
    all_match &= match;
    summary.push_back({{"chain", r.chain}, {"classes", x.classes.size()}, {"huge_watermark", x.huge_watermark},
                       {"reference_classes", r.classes}, {"reference_huge_watermark", r.watermark}, {"match", match}});
  }
  if (json) {
    nlohmann::json cl = nlohmann::json::array();
    for (const auto& c : t.classes)
      cl.push_back({{"index", c.index}, {"first_index", c.first_index}, {"size", c.size},
                    {"pages_per_zspage", c.pages_per_zspage}, {"objs_per_zspage", c.objs_per_zspage},
                    {"used_percent", c.used_percent}, {"huge", c.huge}});
    std::printf("%s\n", nlohmann::json{{"chain", t.chain}, {"classes", cl}, {"distinct_classes", t.classes.size()},
                                       {"huge_watermark", t.huge_watermark}, {"huge_class_size", t.huge_class_size},
                                       {"reference", summary}, {"reference_match", all_match}}
                            .dump(2)
                            .c_str());
    return all_match ? 0 : 1;
  }
  std::printf("zsmalloc classes, chain %u: %zu distinct classes, huge watermark %u (requests >= %zu bytes are huge)\n\n",
              t.chain, t.classes.size(), t.huge_watermark, t.huge_class_size);
  std::printf("%5s %9s %5s %5s %5s %6s %s\n", "index", "serves", "size", "pages", "objs", "used%", "");
  for (const auto& c : t.classes)
    std::printf("%5u %4u-%-4u %5u %5u %5u %5u%% %s\n", c.index, c.first_index, c.index, c.size, c.pages_per_zspage,
                c.objs_per_zspage, c.used_percent, c.huge ? "huge" : "");
  std::printf("\nagainst Documentation/mm/zsmalloc.rst:\n%6s %8s %10s %10s %10s\n", "chain", "classes", "reference",
              "watermark", "reference");
  for (const auto& s : summary)
    std::printf("%6u %8zu %10u %10u %10u %s\n", s["chain"].get<unsigned>(), s["classes"].get<std::size_t>(),
                s["reference_classes"].get<unsigned>(), s["huge_watermark"].get<unsigned>(),
                s["reference_huge_watermark"].get<unsigned>(), s["match"].get<bool>() ? "ok" : "MISMATCH");
  return all_match ? 0 : 1;
}

int run_zs_stats(unsigned objects, bool json) {
  auto a = make_arena_or_die(std::size_t{1} << 30);
  auto pool = std::move(a->zs_create_pool({.name = "stats"}).value());
  std::mt19937_64 rng(42);
  std::vector<ZsHandle> hs;
  for (unsigned i = 0; i < objects; ++i) {
    auto r = pool->malloc(1 + rng() % 4096);
    if (!r.ok()) break;
    hs.push_back(r.value());
  }
  std::shuffle(hs.begin(), hs.end(), rng);
  for (std::size_t i = 0; i < hs.size() / 2; ++i) pool->free(hs[i]);
  auto before = pool->class_stats();
  std::uint64_t pages_before = pool->total_pages();
  std::uint64_t freed = pool->compact();
  auto after = pool->class_stats();
  ZsPoolStats s = pool->stats();
  if (json) {
    std::printf("%s\n", nlohmann::json{{"objects", s.objects}, {"objects_allocated", hs.size()}, {"objects_asked", objects},
                                       {"pages_before_compaction", pages_before},
                                       {"pages_used", s.pages_used}, {"pages_compacted", s.pages_compacted},
                                       {"objects_moved", s.objects_moved}, {"zspages", s.zspages},
                                       {"descriptor_bytes", s.descriptor_bytes}, {"handle_bytes", s.handle_bytes},
                                       {"classes_before", class_stats_json(before)}, {"classes_after", class_stats_json(after)}}
                            .dump(2)
                            .c_str());
  } else {
    if (hs.size() < objects)
      std::printf("%zu objects of 1..4096 bytes (of %u asked: the 1 GiB arena held no more), half freed at random:\n",
                  hs.size(), objects);
    else
      std::printf("%u objects of 1..4096 bytes, half freed at random:\n", objects);
    print_class_stats(stdout, before);
    std::printf("\nafter compaction (%llu pages freed, %llu objects moved):\n", static_cast<unsigned long long>(freed),
                static_cast<unsigned long long>(s.objects_moved));
    print_class_stats(stdout, after);
    std::printf("\npool: %llu pages, %llu zspages, %llu objects; descriptors %s, handles %s\n",
                static_cast<unsigned long long>(s.pages_used), static_cast<unsigned long long>(s.zspages),
                static_cast<unsigned long long>(s.objects), human_bytes(static_cast<double>(s.descriptor_bytes)).c_str(),
                human_bytes(static_cast<double>(s.handle_bytes)).c_str());
  }
  for (std::size_t i = hs.size() / 2; i < hs.size(); ++i) pool->free(hs[i]);
  return 0;
}

int run_zram(const std::vector<std::string>& files, const std::string& algo, bool json) {
  // The sizes first (the arena and the store are sized from them); the data is streamed a page
  // at a time, twice (store, then load and compare), so a large file costs no more than its
  // compressed pages.
  std::vector<std::uint64_t> sizes;
  std::uint64_t pages = 0;
  for (const auto& f : files) {
    // Regular files only: a device (/dev/zero) or a FIFO would be read without end.
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) throw std::runtime_error("cannot read " + f + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(f + " is not a regular file (zram reads regular files only)");
    sizes.push_back(static_cast<std::uint64_t>(st.st_size));
    pages += (sizes.back() + kPageSize - 1) / kPageSize;
  }
  if (pages == 0) throw std::runtime_error("no data: the files are empty");
  auto a = make_arena_or_die(std::max<std::size_t>(std::size_t{64} << 20, pages * kPageSize * 2));
  ZramConfig cfg;
  cfg.pages = pages;
  if (algo == "zstd") cfg.algo = ZramAlgo::zstd;
  else if (algo != "lz4") throw std::runtime_error("unknown algorithm " + algo + " (lz4, zstd)");
  auto zr = ZramStore::create(std::move(a->zs_create_pool({.name = "zram"}).value()), cfg);
  if (!zr.ok()) throw std::runtime_error("zram: " + describe(zr.error()));
  ZramStore& z = *zr.value();

  std::vector<char> page(kPageSize), out(kPageSize);
  std::uint64_t mismatches = 0;
  // Each page of each file as stat sized it (a file that shrank since is an error; one that
  // grew is read up to that size), its last page zero-padded.
  auto for_each_page = [&](auto&& fn) {
    std::uint64_t index = 0;
    for (std::size_t k = 0; k < files.size(); ++k) {
      std::ifstream in(files[k], std::ios::binary);
      if (!in) throw std::runtime_error("cannot read " + files[k]);
      for (std::uint64_t off = 0; off < sizes[k]; off += kPageSize, ++index) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kPageSize, sizes[k] - off));
        in.read(page.data(), static_cast<std::streamsize>(n));
        if (static_cast<std::size_t>(in.gcount()) != n) throw std::runtime_error(files[k] + " changed while it was read");
        std::memset(page.data() + n, 0, kPageSize - n);
        fn(index, n);
      }
    }
  };
  for_each_page([&](std::uint64_t i, std::size_t) {
    if (Error e = z.store(i, page.data())) throw std::runtime_error("zram store: " + describe(e));
    if ((i + 1) % 262144 == 0)  // progress on large inputs: every GiB
      std::fprintf(stderr, "zram: %llu of %llu pages stored\n", static_cast<unsigned long long>(i + 1),
                   static_cast<unsigned long long>(pages));
  });
  ZramStats stored = z.stats();
  for_each_page([&](std::uint64_t i, std::size_t n) {
    if (Error e = z.load(i, out.data())) throw std::runtime_error("zram load: " + describe(e));
    if (std::memcmp(out.data(), page.data(), n) != 0) ++mismatches;
  });
  std::uint64_t compacted = z.compact();
  z.pool().validate();
  ZramStats s = z.stats();
  double ratio = s.compr_data_size ? static_cast<double>(s.orig_data_size) / static_cast<double>(s.compr_data_size) : 0;
  double mem_ratio = s.mem_used_total ? static_cast<double>(s.orig_data_size) / static_cast<double>(s.mem_used_total) : 0;
  if (json) {
    std::printf("%s\n", nlohmann::json{{"files", files.size()}, {"pages", pages}, {"algorithm", zram_algo_name(cfg.algo)},
                                       {"orig_data_size", s.orig_data_size}, {"compr_data_size", s.compr_data_size},
                                       {"mem_used_total", s.mem_used_total}, {"mem_used_max", s.mem_used_max},
                                       {"same_pages", s.same_pages}, {"huge_pages", s.huge_pages},
                                       {"pages_compacted", s.pages_compacted}, {"compression_ratio", ratio},
                                       {"memory_ratio", mem_ratio}, {"mismatched_pages", mismatches},
                                       {"mem_used_before_compaction", stored.mem_used_total}}
                            .dump(2)
                            .c_str());
  } else {
    std::printf("zram (%s): %zu files, %llu pages stored and read back, %llu mismatched\n", zram_algo_name(cfg.algo),
                files.size(), static_cast<unsigned long long>(pages), static_cast<unsigned long long>(mismatches));
    std::printf("  orig_data_size  %s\n  compr_data_size %s  (ratio %.2f)\n  mem_used_total  %s  (orig / mem %.2f)\n",
                human_bytes(static_cast<double>(s.orig_data_size)).c_str(),
                human_bytes(static_cast<double>(s.compr_data_size)).c_str(), ratio,
                human_bytes(static_cast<double>(s.mem_used_total)).c_str(), mem_ratio);
    std::printf("  same_pages %llu, huge_pages %llu, pages_compacted %llu\n", static_cast<unsigned long long>(s.same_pages),
                static_cast<unsigned long long>(s.huge_pages), static_cast<unsigned long long>(compacted));
  }
  return mismatches == 0 ? 0 : 1;
}

}  // namespace memdesc::tools

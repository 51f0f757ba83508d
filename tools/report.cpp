// tools/report.cpp — see report.hpp.
#include "report.hpp"

#include <png.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace memdesc::tools {

std::string human_bytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, unit[u]);
  return buf;
}

std::size_t parse_size(const std::string& s) {
  // Digits with an optional fraction, then an optional suffix: no sign, exponent, inf or nan.
  std::size_t pos = 0, dots = 0;
  while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == '.')) dots += s[pos++] == '.';
  if (pos == 0 || dots > 1 || (pos == 1 && dots == 1))
    throw std::invalid_argument("not a size: '" + s + "' (a number with an optional K, M, G or T suffix)");
  double v = std::strtod(s.substr(0, pos).c_str(), nullptr);
  std::string suffix = s.substr(pos);
  for (auto& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!suffix.empty() && suffix.back() == 'B') suffix.pop_back();
  if (!suffix.empty() && suffix.back() == 'I') suffix.pop_back();
  double mult = 1;
  if (suffix == "K") mult = 1024.0;
  else if (suffix == "M") mult = 1024.0 * 1024;
  else if (suffix == "G") mult = 1024.0 * 1024 * 1024;
  else if (suffix == "T") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty()) throw std::invalid_argument("unknown size suffix in '" + s + "' (use K, M, G or T)");
  if (!(v > 0)) throw std::invalid_argument("size must be positive: '" + s + "'");
  double bytes = v * mult;
  if (!(bytes < 0x1p62)) throw std::invalid_argument("size too large: '" + s + "' (an arena holds at most 16T)");
  return static_cast<std::size_t>(bytes);
}

nlohmann::json buddyinfo_json(const ArenaInfo& i) {
  nlohmann::json zones = nlohmann::json::array();
  for (const ZoneInfo& z : i.zones) {
    std::vector<std::uint64_t> nr(z.nr_free, z.nr_free + i.max_order + 1);
    zones.push_back({{"name", z.name}, {"start_pfn", z.start_pfn}, {"pages", z.pages}, {"free_pages", z.free_pages},
                     {"nr_free", nr}});
  }
  return zones;
}

nlohmann::json info_json(const ArenaInfo& i) {
  return {{"arena_bytes", i.arena_bytes},
          {"pages", i.pages},
          {"max_order", i.max_order},
          {"metadata_bytes", i.metadata.total},
          {"metadata",
           {{"words", i.metadata.words},
            {"free_state", i.metadata.free_state},
            {"caches", i.metadata.caches},
            {"descriptors", i.metadata.descriptors}}},
          {"bytes_per_page", i.bytes_per_page},
          {"init_seconds", i.init_seconds},
          {"rss_bytes", i.rss_bytes},
          {"word_array_resident_bytes", i.word_array_resident_bytes},
          {"free_pages", i.free_pages},
          {"cached_pages", i.cached_pages},
          {"folios", i.folios},
          {"folio_descriptor_bytes", i.folio_descriptor_bytes},
          {"frag_blocks", i.frag_blocks},
          {"zones", buddyinfo_json(i)}};
}

void print_info(std::FILE* out, const ArenaInfo& i) {
  std::fprintf(out, "arena        %s, %llu pages of 4 KiB, max order %u (blocks up to %s)\n",
               human_bytes(static_cast<double>(i.arena_bytes)).c_str(), static_cast<unsigned long long>(i.pages),
               i.max_order, human_bytes(4096.0 * (1u << i.max_order)).c_str());
  for (const ZoneInfo& z : i.zones)
    std::fprintf(out, "zone         %-8s pfn %llu.., %llu pages, %llu free\n", z.name,
                 static_cast<unsigned long long>(z.start_pfn), static_cast<unsigned long long>(z.pages),
                 static_cast<unsigned long long>(z.free_pages));
  std::fprintf(out, "metadata     words %s + free-page state %s + thread caches %s + descriptors %s\n",
               human_bytes(static_cast<double>(i.metadata.words)).c_str(),
               human_bytes(static_cast<double>(i.metadata.free_state)).c_str(),
               human_bytes(static_cast<double>(i.metadata.caches)).c_str(),
               human_bytes(static_cast<double>(i.metadata.descriptors)).c_str());
  std::fprintf(out, "             = %s, %.3f bytes per page (a 64-byte struct page would be %s)\n",
               human_bytes(static_cast<double>(i.metadata.total)).c_str(), i.bytes_per_page,
               human_bytes(64.0 * static_cast<double>(i.pages)).c_str());
  std::fprintf(out, "             (descriptors: slab pages of the slab, folio, page_frag and zspage descriptor caches\n"
                    "              and of zsmalloc handles, with their words; %llu live folios hold %s of folio\n"
                    "              descriptors; %llu page_frag blocks)\n",
               static_cast<unsigned long long>(i.folios), human_bytes(static_cast<double>(i.folio_descriptor_bytes)).c_str(),
               static_cast<unsigned long long>(i.frag_blocks));
  std::fprintf(out, "metadata     region %s of address space apart from the arena, %llu pages free\n",
               human_bytes(static_cast<double>(i.metadata_region_bytes)).c_str(),
               static_cast<unsigned long long>(i.metadata_region_free_pages));
  std::fprintf(out, "init         %.3f ms\n", i.init_seconds * 1e3);
  std::fprintf(out, "rss          %s (of which page-word array %s)\n", human_bytes(static_cast<double>(i.rss_bytes)).c_str(),
               human_bytes(static_cast<double>(i.word_array_resident_bytes)).c_str());
  std::fprintf(out, "free         %llu pages in the buddy, %llu in per-thread caches\n",
               static_cast<unsigned long long>(i.free_pages), static_cast<unsigned long long>(i.cached_pages));
}

void print_buddyinfo(std::FILE* out, const ArenaInfo& i) {
  std::fprintf(out, "%-14s", "free blocks");
  for (unsigned k = 0; k <= i.max_order; ++k) std::fprintf(out, " %7s%u", "order", k);
  std::fprintf(out, "\n");
  for (const ZoneInfo& z : i.zones) {
    std::fprintf(out, "Zone %-9s", z.name);
    for (unsigned k = 0; k <= i.max_order; ++k) std::fprintf(out, " %8llu", static_cast<unsigned long long>(z.nr_free[k]));
    std::fprintf(out, "\n");
  }
}

nlohmann::json slabinfo_json(const std::vector<SlabCacheInfo>& caches) {
  nlohmann::json a = nlohmann::json::array();
  for (const SlabCacheInfo& c : caches)
    a.push_back({{"name", c.name},
                 {"active_objs", c.active_objs},
                 {"num_objs", c.num_objs},
                 {"objsize", c.object_size},
                 {"stride", c.stride},
                 {"objperslab", c.objs_per_slab},
                 {"pagesperslab", c.pages_per_slab},
                 {"slabs", c.slabs},
                 {"partial_slabs", c.partial_slabs},
                 {"empty_slabs", c.empty_slabs},
                 {"descriptor_bytes", c.descriptor_bytes},
                 {"limit", c.limit},
                 {"max_limit", c.max_limit}});
  return a;
}

void print_slabinfo(std::FILE* out, const std::vector<SlabCacheInfo>& caches, bool all) {
  std::fprintf(out, "%-18s %10s %10s %8s %8s %11s %12s %8s %8s %10s %9s\n", "# name", "active_objs", "num_objs", "objsize",
               "stride", "objperslab", "pagesperslab", "slabs", "partial", "desc_bytes", "limit");
  for (const SlabCacheInfo& c : caches) {
    if (!all && c.slabs == 0) continue;
    std::fprintf(out, "%-18s %10llu %10llu %8u %8u %11u %12u %8llu %8llu %10llu %4u/%-4u\n", c.name.c_str(),
                 static_cast<unsigned long long>(c.active_objs), static_cast<unsigned long long>(c.num_objs),
                 c.object_size, c.stride, c.objs_per_slab, c.pages_per_slab, static_cast<unsigned long long>(c.slabs),
                 static_cast<unsigned long long>(c.partial_slabs), static_cast<unsigned long long>(c.descriptor_bytes),
                 c.limit, c.max_limit);
  }
}

namespace {

struct Rgb {
  unsigned char r, g, b;
};

Rgb colour(MemdescWord w, unsigned max_order) {
  switch (w.type()) {
    case MemdescType::Buddy: return w.buddy_dirty() ? Rgb{96, 96, 96} : Rgb{24, 24, 24};
    case MemdescType::Misc: {
      if (w.misc_subtype() != MiscSubtype::Pages) return {200, 60, 200};
      double t = max_order ? static_cast<double>(w.order()) / max_order : 0;  // small blue → large orange
      return {static_cast<unsigned char>(60 + 195 * t), static_cast<unsigned char>(130 + 70 * t),
              static_cast<unsigned char>(255 - 195 * t)};
    }
    case MemdescType::Slab: return {60, 200, 90};
    case MemdescType::File:
    case MemdescType::Anon: return {230, 210, 60};
    case MemdescType::ZPDesc: return {230, 80, 60};
    case MemdescType::PageTable: return {60, 210, 210};
    case MemdescType::Frag: return {250, 150, 200};
    default: return {255, 255, 255};
  }
}

}  // namespace

void print_png_legend(std::FILE* out) {
  std::fprintf(out,
               "picture      one pixel per page (or per group of pages), row-major from pfn 0; black = free and clean,\n"
               "             grey = free and dirty, blue→orange = alloc_pages blocks by order (0→max), magenta = other Misc,\n"
               "             green = slab, yellow = folio, red = zsmalloc, cyan = page table, pink = page_frag;\n"
               "             a red line marks the start of the Movable zone\n");
}

std::string write_arena_png(const Arena& a, const std::string& path) {
  const std::uint64_t pages = a.pages();
  const unsigned width = 512;
  std::uint64_t per_px = std::max<std::uint64_t>(1, (pages + width * 512 - 1) / (width * 512));
  std::uint64_t pixels = (pages + per_px - 1) / per_px;
  unsigned height = static_cast<unsigned>((pixels + width - 1) / width);
  ArenaInfo info = a.info();
  std::uint64_t movable_px = info.zones[1].pages ? info.zones[1].start_pfn / per_px : ~0ull;

  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return "cannot open " + path;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop pinfo = png ? png_create_info_struct(png) : nullptr;
  if (!png || !pinfo || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &pinfo);
    std::fclose(f);
    return "libpng failed writing " + path;
  }
  png_init_io(png, f);
  png_set_IHDR(png, pinfo, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, pinfo);
  std::vector<unsigned char> row(width * 3);
  for (unsigned y = 0; y < height; ++y) {
    for (unsigned x = 0; x < width; ++x) {
      std::uint64_t px = std::uint64_t{y} * width + x;
      Rgb c{0, 0, 0};
      if (px < pixels) {
        // The most "interesting" page of the group: an allocated page wins over a free one.
        MemdescWord shown = a.pfn_to_memdesc(px * per_px);
        for (std::uint64_t i = 1; i < per_px && px * per_px + i < pages && shown.is(MemdescType::Buddy); ++i)
          shown = a.pfn_to_memdesc(px * per_px + i);
        c = colour(shown, info.max_order);
        if (px >= movable_px && px < movable_px + width) c = {255, 0, 0};  // zone boundary line
      }
      row[x * 3] = c.r, row[x * 3 + 1] = c.g, row[x * 3 + 2] = c.b;
    }
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &pinfo);
  // A full disk (or /dev/full) shows at the flush, not before: the picture counts as written only if it is.
  bool write_failed = std::fflush(f) != 0 || std::ferror(f);
  if (std::fclose(f) != 0 || write_failed) return "cannot write " + path + ": " + std::strerror(errno);
  return {};
}

std::unique_ptr<Arena> make_arena_or_die(std::size_t bytes) {
  ArenaConfig c;
  c.size = bytes;
  auto r = Arena::create(c);
  if (!r.ok()) {
    std::fprintf(stderr, "memdesc: cannot create a %s arena: %s\n", human_bytes(static_cast<double>(bytes)).c_str(),
                 describe(r.error()).c_str());
    std::exit(1);
  }
  return std::move(r.value());
}

}  // namespace memdesc::tools

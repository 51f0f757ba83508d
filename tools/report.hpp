// tools/report.hpp — printing arena figures as text tables and JSON.
#pragma once
#include <cstdio>
#include <memdesc/arena.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace memdesc::tools {

std::string human_bytes(double bytes);                 // "1.00 GiB"
std::size_t parse_size(const std::string& s);          // "1G", "64G", "1T", "512M", "4096"; throws on junk
// An arena of `bytes` with the default configuration; says why on stderr and exits 1 if it cannot be made.
std::unique_ptr<Arena> make_arena_or_die(std::size_t bytes);

nlohmann::json info_json(const ArenaInfo& i);
nlohmann::json buddyinfo_json(const ArenaInfo& i);
void print_info(std::FILE* out, const ArenaInfo& i);
void print_buddyinfo(std::FILE* out, const ArenaInfo& i);
nlohmann::json slabinfo_json(const std::vector<SlabCacheInfo>& caches);
void print_slabinfo(std::FILE* out, const std::vector<SlabCacheInfo>& caches, bool all);  // all: also idle caches

// Draws one pixel per page (or per group of pages on large arenas), coloured by page word.
// Returns an empty string on success, else the reason.
std::string write_arena_png(const Arena& a, const std::string& path);
void print_png_legend(std::FILE* out);

}  // namespace memdesc::tools

// memdesc/zram.hpp — a compressed page store on a zsmalloc pool (the zram role). Layer: zram (a client of zsmalloc's public API).
//
// Pages are stored by index: store() compresses a 4 KiB page (lz4 by default, zstd on request)
// into a zsmalloc object; load() decompresses it back; discard() drops it. A page that is one
// 8-byte value repeated (all zero, typically) is kept as that value, with no pool memory. A
// page whose compressed form would land in a huge class is stored uncompressed in the huge
// class. stats() mirrors zram's mm_stat.
//
//   auto store = ZramStore::create(arena.zs_create_pool({.name = "zram"}).value(), {.pages = n}).value();
//   store->store(7, page);            // an Error (operator bool) on failure; the old contents stay
//   store->load(7, out);              // a never-stored index reads as zeros
//
// Thread-safe: each index has a lock (striped), so stores and loads of different indices run
// in parallel; the store owns its pool and frees everything when destroyed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memdesc/result.hpp>
#include <memdesc/zsmalloc.hpp>
#include <memory>

namespace memdesc {

namespace zram { class Zram; }

enum class ZramAlgo : std::uint8_t { lz4, zstd };
const char* zram_algo_name(ZramAlgo a);

struct ZramConfig {
  std::uint64_t pages = 0;          // indices 0 .. pages-1
  ZramAlgo algo = ZramAlgo::lz4;
  int zstd_level = 3;
};

struct ZramStats {                   // zram's mm_stat, in bytes and pages
  std::uint64_t orig_data_size = 0;   // pages stored (same-filled included) * 4096
  std::uint64_t compr_data_size = 0;  // bytes of the stored objects
  std::uint64_t mem_used_total = 0;   // pool pages * 4096
  std::uint64_t mem_used_max = 0;     // the most mem_used_total has been
  std::uint64_t same_pages = 0;       // kept as a repeated value
  std::uint64_t pages_compacted = 0;  // pages the pool's compaction gave back
  std::uint64_t huge_pages = 0;       // stored uncompressed
  std::uint64_t pages_stored = 0;
};

class ZramStore {
 public:
  static Result<std::unique_ptr<ZramStore>> create(std::unique_ptr<ZsPool> pool, const ZramConfig& cfg);
  ~ZramStore();
  ZramStore(const ZramStore&) = delete;
  ZramStore& operator=(const ZramStore&) = delete;

  Error store(std::uint64_t index, const void* page);  // page: kPageSize bytes
  Error load(std::uint64_t index, void* page) const;   // invalid_request for an index out of range
  void discard(std::uint64_t index);
  std::uint64_t compact();
  ZramStats stats() const;
  ZsPool& pool();

 private:
  explicit ZramStore(std::unique_ptr<zram::Zram> z);
  std::unique_ptr<zram::Zram> z_;
};

}  // namespace memdesc

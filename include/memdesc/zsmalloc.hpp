// memdesc/zsmalloc.hpp — zsmalloc on memdescs: a pool for compressed objects. Layer: zsmalloc.
//
// Objects of 1 .. 4096 bytes live in size classes (32 .. 4096 bytes in 16-byte steps). A class
// stores its objects back to back in *zspages*: chains of 1..chain order-0 pages that need not
// be contiguous, so an object may straddle two pages. Every page of a zspage holds the word
// ZPDesc(zspage descriptor, order 0, aux = the page's position in the chain); the descriptor
// holds everything compaction, migration and locking need (docs/ZSMALLOC.md).
// Callers get an opaque handle, never a pointer: objects move when the pool compacts or when
// one of its pages migrates, and the handle follows them.
//
//   auto pool = arena.zs_create_pool({.name = "zram0"}).value();
//   ZsHandle h = pool->malloc(1234).value();      // an error for 0 or > 4096 bytes, or no memory
//   pool->write(h, src, 1234);
//   const void* p = pool->read_begin(h, buf, 1234);  // into the page, or copied into buf
//   ... use p ...; pool->read_end(h, p);
//   pool->free(h);
//   pool->compact();                               // pages given back to the arena
//
// Thread-safe: any thread may call anything. A reader between read_begin and read_end pins the
// object's zspage: compaction and migration skip it (they never wait for a reader). A pool
// must be destroyed before its arena; destroying it frees every object still in it.
// Misuse — a freed, forged or foreign handle, a length beyond the object — is a fatal report.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memdesc/constants.hpp>
#include <memdesc/gfp.hpp>
#include <memdesc/result.hpp>
#include <memory>
#include <vector>

namespace memdesc {

namespace zsmalloc { class Pool; }

using ZsHandle = std::uint64_t;  // never 0

inline constexpr unsigned kZsMinAllocSize = 32;     // smallest class
inline constexpr unsigned kZsSizeClassDelta = 16;   // class step
inline constexpr unsigned kZsSizeClasses = 255;     // nominal classes 32, 48, ..., 4096
inline constexpr unsigned kZsHeaderSize = 8;        // the in-object header (non-huge classes)
inline constexpr std::size_t kZsMaxAllocSize = kPageSize;
inline constexpr unsigned kZsDefaultChain = 8, kZsMinChain = 4, kZsMaxChain = 16;
inline constexpr unsigned kZsFullnessGroups = 12;   // 0 %, 1-9 %, 10-19 %, ..., 90-99 %, 100 %

// One class of the table: the nominal classes merged into it are those from `first_index` to
// `index` (a class serves every nominal size its geometry agrees with).
struct ZsClassGeometry {
  unsigned index = 0;             // nominal index of this class: size = 32 + 16 * index
  unsigned first_index = 0;       // smallest nominal index it serves
  unsigned size = 0;              // bytes per slot (header included)
  unsigned pages_per_zspage = 0;
  unsigned objs_per_zspage = 0;
  bool huge = false;              // one object per page, stored without a header
  unsigned used_percent = 0;      // slot bytes / zspage bytes
};

struct ZsClassTable {
  unsigned chain = 0;                      // the most pages a zspage may chain
  std::vector<ZsClassGeometry> classes;    // distinct classes, smallest first
  std::size_t huge_class_size = 0;         // requests of this many bytes or more go to a huge class
  unsigned huge_watermark = 0;             // size of the largest class that is not huge
};

// The class table for a chain length (kZsMinChain .. kZsMaxChain); a pure function.
ZsClassTable zs_class_table(unsigned chain = kZsDefaultChain);

struct ZsPoolConfig {
  const char* name = "zspool";
  unsigned chain = kZsDefaultChain;  // 4 .. 16 pages per zspage at most
  bool movable = true;               // take pages from the MOVABLE zone first (migration's zone)
};

// Per class, like the kernel's debugfs "classes" file.
struct ZsClassStats {
  unsigned index = 0, size = 0, pages_per_zspage = 0, objs_per_zspage = 0;
  bool huge = false;
  std::uint64_t zspages[kZsFullnessGroups] = {};  // zspages per fullness group
  std::uint64_t obj_allocated = 0;  // slots in all zspages
  std::uint64_t obj_used = 0;       // live objects
  std::uint64_t pages_used = 0;
  std::uint64_t freeable = 0;       // pages compaction could give back (zs_can_compact)
};

struct ZsPoolStats {
  std::uint64_t pages_used = 0;       // pages the pool holds (zs_get_total_pages)
  std::uint64_t objects = 0;          // live objects
  std::uint64_t zspages = 0;
  std::uint64_t pages_compacted = 0;  // pages given back by compaction, ever
  std::uint64_t objects_moved = 0;    // by compaction, ever
  std::uint64_t pages_migrated = 0;   // single pages moved by migrate_page, ever
  std::uint64_t descriptor_bytes = 0; // zspage descriptors (their slab pages count as metadata)
  std::uint64_t handle_bytes = 0;     // 8 bytes per live object (its handle slot)
};

// One page of the pool, for the migration layer and for tests that pick pages to move.
struct ZsPageInfo {
  void* addr = nullptr;
  unsigned class_size = 0;
  unsigned position = 0;       // in its zspage's chain
  unsigned chain_pages = 0;    // pages in its zspage
  unsigned objects_starting = 0;  // allocated objects whose first byte is in this page
  bool straddle_in = false;    // an allocated object that started in the previous page ends here
  bool isolated = false;
};

enum class ZsMigrateResult : std::uint8_t {
  migrated,      // the page's contents now live in a new page; the old page is free
  busy,          // a reader holds an object of the zspage: try again later (page stays isolated)
  not_isolated,  // the page is not isolated (isolate_page first)
  no_memory,     // no page to migrate into (page stays isolated)
};
const char* zs_migrate_result_name(ZsMigrateResult r);

class Arena;

// Made by Arena::zs_create_pool; must be destroyed before its arena (the arena's destructor
// reports a pool still alive).
class ZsPool {
 public:
  ~ZsPool();  // frees every object still in the pool
  ZsPool(const ZsPool&) = delete;
  ZsPool& operator=(const ZsPool&) = delete;

  // 1 .. kZsMaxAllocSize bytes: a handle. 0 or more bytes: Errc::invalid_request; no page or
  // descriptor: Errc::out_of_memory (nothing left behind).
  Result<ZsHandle> malloc(std::size_t size, Gfp gfp = GFP_NONE);
  void free(ZsHandle h);
  // The first `len` bytes of the object (len <= the size it was allocated with, rounded to its
  // class): a pointer into its page when they sit in one page, else a copy in `local_copy`
  // (which must hold len bytes). The object cannot move until read_end(h, returned pointer).
  const void* read_begin(ZsHandle h, void* local_copy, std::size_t len);
  void read_end(ZsHandle h, const void* mem);
  void write(ZsHandle h, const void* src, std::size_t len);  // into the first len bytes
  std::size_t object_capacity(ZsHandle h);  // bytes the object's slot holds for the caller

  // Compaction: pages compaction could give back, and a pass over every class that moves
  // objects from the emptiest zspages into the fullest. Returns pages given back. Only one
  // compaction runs per pool at a time (a concurrent call returns 0); a class whose source
  // zspage is pinned by a reader is left for the next pass.
  std::uint64_t can_compact() const;
  std::uint64_t compact();

  // Page migration (movable operations). isolate_page takes one page of the pool out of
  // reach of zspage freeing; migrate_page copies it into a new page, rewrites the handles of
  // the objects that start in it and frees the old page; putback_page ends an isolation that
  // did not migrate. `page` is any address inside the page.
  bool isolate_page(const void* page);
  ZsMigrateResult migrate_page(const void* page);
  void putback_page(const void* page);

  std::size_t huge_class_size() const;
  const ZsClassTable& class_table() const;
  std::uint64_t total_pages() const;
  ZsPoolStats stats() const;
  std::vector<ZsClassStats> class_stats() const;  // one per distinct class
  std::vector<ZsPageInfo> pages() const;           // a snapshot (class by class); stale at once if others run
  void validate() const;  // every ZS-* invariant; fatal report on violation. Call when quiescent.

 private:
  friend class Arena;
  ZsPool(std::unique_ptr<zsmalloc::Pool> p, std::atomic<std::uint64_t>* live);
  std::unique_ptr<zsmalloc::Pool> p_;
  std::atomic<std::uint64_t>* live_;  // the arena's count of live pools
};

}  // namespace memdesc

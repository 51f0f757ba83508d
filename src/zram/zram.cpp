// zram/zram.cpp — the compressed page store (memdesc/zram.hpp).
//
// Slot table: one 16-byte entry per index — the handle (or the repeated value of a
// same-filled page), the stored length and flags. Entry locks are striped mutexes (rank ZramEntry)
// taken outermost (before any zsmalloc lock, never under one): a store compresses, allocates
// and writes its object with no lock held, then swaps it into the entry under the lock and
// frees the old object after; a load holds the entry lock across the object read so that a
// racing store or discard cannot free the object under it.
#include <memdesc/zram.hpp>

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <atomic>
#include <cstring>
#include <mutex>

#include "base/base.hpp"
#include "rcu/rcu.hpp"

namespace memdesc {

const char* zram_algo_name(ZramAlgo a) { return a == ZramAlgo::zstd ? "zstd" : "lz4"; }

namespace zram {

namespace detail {

constexpr unsigned kStripes = 256;
constexpr std::uint8_t kSame = 1, kHuge = 2;

struct Entry {
  std::uint64_t value = 0;  // handle, or the repeated word of a same-filled page
  std::uint32_t len = 0;    // stored bytes (0: empty or same-filled)
  std::uint8_t flags = 0;
};

// A page that is one 8-byte word repeated.
bool same_filled(const void* page, std::uint64_t* value) {
  const auto* w = static_cast<const std::uint64_t*>(page);
  for (std::size_t i = 1; i < kPageSize / 8; ++i)
    if (w[i] != w[0]) return false;
  *value = w[0];
  return true;
}

struct ZstdContexts {  // one pair per thread, made on first use
  ZSTD_CCtx* c = nullptr;
  ZSTD_DCtx* d = nullptr;
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
thread_local ZstdContexts tls_zstd;

}  // namespace detail
using namespace detail;

struct FreeEntries {
  void operator()(Entry* e) const { std::free(e); }
};

class Zram {
 public:
  // `entries`: cfg.pages zeroed entries (calloc: untouched pages cost nothing until stored).
  Zram(std::unique_ptr<ZsPool> pool, const ZramConfig& cfg, Entry* entries)
      : pool_(std::move(pool)), cfg_(cfg), entries_(entries) {
    static const rcu::ForkOps kOps{&fork_acquire, &fork_release, nullptr};
    fork_hook_.enable(this, &kOps);
  }
  ~Zram() {
    fork_hook_.disable();
    for (std::uint64_t i = 0; i < cfg_.pages; ++i)
      if (entries_[i].len) pool_->free(entries_[i].value);
  }

  Error store(std::uint64_t index, const void* page);
  Error load(std::uint64_t index, void* page);
  void discard(std::uint64_t index);
  ZramStats stats() const;
  ZsPool& pool() { return *pool_; }
  std::uint64_t compact() { return pool_->compact(); }

 private:
  RankedMutex& lock_of(std::uint64_t index) { return stripes_[index % kStripes].m; }
  // Empties entry e (its lock held); returns the handle to free once the lock is dropped.
  ZsHandle clear_locked(Entry& e);
  void note_mem_used() {
    std::uint64_t now = pool_->total_pages() * kPageSize, max = mem_used_max_.load(std::memory_order_relaxed);
    while (now > max && !mem_used_max_.compare_exchange_weak(max, now, std::memory_order_relaxed)) {
    }
  }

  static void fork_acquire(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS {
    if (r == LockRank::ZramEntry)
      for (Stripe& s : static_cast<Zram*>(self)->stripes_) s.m.fork_acquire();
  }
  static void fork_release(void* self, LockRank r) NO_THREAD_SAFETY_ANALYSIS {
    if (r == LockRank::ZramEntry)
      for (Stripe& s : static_cast<Zram*>(self)->stripes_) s.m.fork_release();
  }

  std::unique_ptr<ZsPool> pool_;
  ZramConfig cfg_;
  std::unique_ptr<Entry[], FreeEntries> entries_;
  struct Stripe {
    RankedMutex m{LockRank::ZramEntry};
  };
  Stripe stripes_[kStripes];
  std::atomic<std::uint64_t> pages_stored_{0}, compr_bytes_{0}, same_pages_{0}, huge_pages_{0}, mem_used_max_{0};
  rcu::ForkHook fork_hook_;  // the stripes across fork()
};

ZsHandle Zram::clear_locked(Entry& e) {
  ZsHandle old = 0;
  if (e.flags & kSame) {
    same_pages_.fetch_sub(1, std::memory_order_relaxed);
    pages_stored_.fetch_sub(1, std::memory_order_relaxed);
  } else if (e.len) {
    old = e.value;
    compr_bytes_.fetch_sub(e.len, std::memory_order_relaxed);
    if (e.flags & kHuge) huge_pages_.fetch_sub(1, std::memory_order_relaxed);
    pages_stored_.fetch_sub(1, std::memory_order_relaxed);
  }
  e = Entry{};
  return old;
}

Error Zram::store(std::uint64_t index, const void* page) {
  if (index >= cfg_.pages) return Error{Errc::invalid_request, 0, "zram store: index beyond the store"};
  Entry fresh;
  std::uint64_t value = 0;
  if (same_filled(page, &value)) {
    fresh.value = value;
    fresh.flags = kSame;
  } else {
    // Compress with no lock held. A result the pool would put in a huge class anyway is
    // stored uncompressed: same memory, no decompression on load.
    alignas(16) char buf[kPageSize + 1024];
    std::size_t n = 0;
    if (cfg_.algo == ZramAlgo::lz4) {
      int r = LZ4_compress_default(static_cast<const char*>(page), buf, static_cast<int>(kPageSize), static_cast<int>(sizeof buf));
      n = r > 0 ? static_cast<std::size_t>(r) : 0;
    } else {
      if (!tls_zstd.c) tls_zstd.c = ZSTD_createCCtx();
      if (!tls_zstd.c) return Error{Errc::out_of_memory, 0, "zram store: zstd context"};
      std::size_t r = ZSTD_compressCCtx(tls_zstd.c, buf, sizeof buf, page, kPageSize, cfg_.zstd_level);
      n = ZSTD_isError(r) ? 0 : r;
    }
    const void* src = buf;
    if (n == 0 || n >= pool_->huge_class_size()) {
      n = kPageSize;
      src = page;
      fresh.flags = kHuge;
    }
    auto h = pool_->malloc(n);
    if (!h.ok()) return h.error();
    pool_->write(h.value(), src, n);
    fresh.value = h.value();
    fresh.len = static_cast<std::uint32_t>(n);
  }
  ZsHandle old;
  {
    MutexGuard g(lock_of(index));
    old = clear_locked(entries_[index]);
    entries_[index] = fresh;
    pages_stored_.fetch_add(1, std::memory_order_relaxed);
    if (fresh.flags & kSame) same_pages_.fetch_add(1, std::memory_order_relaxed);
    compr_bytes_.fetch_add(fresh.len, std::memory_order_relaxed);
    if (fresh.flags & kHuge) huge_pages_.fetch_add(1, std::memory_order_relaxed);
  }
  if (old) pool_->free(old);
  note_mem_used();
  return Error::none();
}

Error Zram::load(std::uint64_t index, void* page) {
  if (index >= cfg_.pages) return Error{Errc::invalid_request, 0, "zram load: index beyond the store"};
  MutexGuard g(lock_of(index));
  const Entry& e = entries_[index];
  if (e.flags & kSame || e.len == 0) {  // same-filled, or never stored (reads as zeros)
    auto* w = static_cast<std::uint64_t*>(page);
    for (std::size_t i = 0; i < kPageSize / 8; ++i) w[i] = e.value;
    return Error::none();
  }
  if (cfg_.algo == ZramAlgo::zstd && !tls_zstd.d && !(tls_zstd.d = ZSTD_createDCtx()))
    return Error{Errc::out_of_memory, 0, "zram load: zstd context"};
  alignas(16) char copy[kPageSize];
  const void* src = pool_->read_begin(e.value, copy, e.len);
  bool ok = true;
  if (e.flags & kHuge) {
    std::memcpy(page, src, kPageSize);
  } else if (cfg_.algo == ZramAlgo::lz4) {
    ok = LZ4_decompress_safe(static_cast<const char*>(src), static_cast<char*>(page), static_cast<int>(e.len),
                             static_cast<int>(kPageSize)) == static_cast<int>(kPageSize);
  } else {
    std::size_t r = ZSTD_decompressDCtx(tls_zstd.d, page, kPageSize, src, e.len);
    ok = !ZSTD_isError(r) && r == kPageSize;
  }
  pool_->read_end(e.value, src);
  if (!ok)  // what we stored does not decompress: the pool corrupted an object
    report_invariant("ZRAM-ROUNDTRIP", "index %llu: stored object of %u bytes does not decompress to a page",
                     static_cast<unsigned long long>(index), e.len);
  return Error::none();
}

void Zram::discard(std::uint64_t index) {
  if (index >= cfg_.pages) return;
  ZsHandle old;
  {
    MutexGuard g(lock_of(index));
    old = clear_locked(entries_[index]);
  }
  if (old) pool_->free(old);
}

ZramStats Zram::stats() const {
  ZramStats s;
  s.pages_stored = pages_stored_.load(std::memory_order_relaxed);
  s.orig_data_size = s.pages_stored * kPageSize;
  s.compr_data_size = compr_bytes_.load(std::memory_order_relaxed);
  s.mem_used_total = pool_->total_pages() * kPageSize;
  s.mem_used_max = std::max(mem_used_max_.load(std::memory_order_relaxed), s.mem_used_total);
  s.same_pages = same_pages_.load(std::memory_order_relaxed);
  s.pages_compacted = pool_->stats().pages_compacted;
  s.huge_pages = huge_pages_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace zram

Result<std::unique_ptr<ZramStore>> ZramStore::create(std::unique_ptr<ZsPool> pool, const ZramConfig& cfg) {
  if (!pool) return Error{Errc::invalid_config, 0, "zram: no pool"};
  if (cfg.pages == 0) return Error{Errc::invalid_config, 0, "zram: a store of 0 pages"};
  if (cfg.algo == ZramAlgo::zstd && (cfg.zstd_level < ZSTD_minCLevel() || cfg.zstd_level > ZSTD_maxCLevel()))
    return Error{Errc::invalid_config, 0, "zram: zstd level out of range"};
  // Recoverable failures are errors, never exceptions: a count no entry table can hold, or no
  // memory for it (or for the store).
  if (cfg.pages > PTRDIFF_MAX / sizeof(zram::Entry))
    return Error{Errc::invalid_config, 0, "zram: too many pages for an entry table"};
  static_assert(std::is_trivially_copyable_v<zram::Entry>, "entries start as zero bytes");
  auto* entries = static_cast<zram::Entry*>(std::calloc(cfg.pages, sizeof(zram::Entry)));
  if (!entries) return Error{Errc::out_of_memory, 0, "zram: no memory for the entry table"};
  std::unique_ptr<zram::Zram> z(new (std::nothrow) zram::Zram(std::move(pool), cfg, entries));
  if (!z) {
    std::free(entries);
    return Error{Errc::out_of_memory, 0, "zram: no memory for the store"};
  }
  // (If the allocation fails the argument is never evaluated: z still owns the store.)
  std::unique_ptr<ZramStore> store(new (std::nothrow) ZramStore(std::move(z)));
  if (!store) return Error{Errc::out_of_memory, 0, "zram: no memory for the store"};
  return store;
}

ZramStore::ZramStore(std::unique_ptr<zram::Zram> z) : z_(std::move(z)) {}
ZramStore::~ZramStore() = default;
Error ZramStore::store(std::uint64_t index, const void* page) { return z_->store(index, page); }
Error ZramStore::load(std::uint64_t index, void* page) const { return z_->load(index, page); }
void ZramStore::discard(std::uint64_t index) { z_->discard(index); }
std::uint64_t ZramStore::compact() { return z_->compact(); }
ZramStats ZramStore::stats() const { return z_->stats(); }
ZsPool& ZramStore::pool() { return z_->pool(); }

}  // namespace memdesc

// core/memmap.cpp — see memmap.hpp.
#include "core/memmap.hpp"

#include "base/base.hpp"
#include "platform/platform.hpp"

namespace memdesc::core {

const char* zone_name(ZoneId z) { return z == ZoneId::Normal ? "Normal" : "Movable"; }

namespace {
std::atomic<std::uint64_t> g_next_id{1};
}

Result<std::unique_ptr<Memmap>> Memmap::create(std::size_t bytes, unsigned max_order, std::size_t movable_bytes) {
  if (max_order > MemdescWord::kMaxOrder) return Error{Errc::invalid_config, 0, "max_order above 15"};
  const std::size_t block = kPageSize << max_order;
  bytes = align_up(bytes, block);
  movable_bytes = align_up(movable_bytes, block);
  if (bytes == 0) return Error{Errc::invalid_config, 0, "arena size is zero"};
  if (bytes / kPageSize > kMaxPages) return Error{Errc::invalid_config, 0, "arena larger than 16 TiB"};
  if (movable_bytes >= bytes) return Error{Errc::invalid_config, 0, "movable zone must leave room for the normal zone"};

  std::unique_ptr<Memmap> m(new Memmap());
  m->pages_ = bytes / kPageSize;
  m->movable_start_ = (bytes - movable_bytes) / kPageSize;
  m->max_order_ = max_order;
  m->id_ = g_next_id.fetch_add(1, std::memory_order_relaxed);

  // The page words: reserved and committed, never touched here. A zero word is a clean free
  // page (BUDDY-WORD), so the array needs no initialisation and costs RSS only where used.
  m->words_bytes_ = align_up(m->pages_ * sizeof(std::uint64_t), platform::os_page_size());
  auto w = platform::reserve_committed(m->words_bytes_, platform::os_page_size());
  if (!w.ok()) return w.error();
  m->words_ = static_cast<std::atomic<std::uint64_t>*>(w.value());
  if constexpr (asan::kOn) {
    std::uint64_t regions = (bytes + (std::uint64_t{1} << kAsanRegionShift) - 1) >> kAsanRegionShift;
    m->asan_regions_.reset(new std::atomic<std::uint64_t>[(regions + 63) / 64]());
  }
  static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && std::atomic<std::uint64_t>::is_always_lock_free);

  // The arena, between two inaccessible gaps of one block each [ARENA-GUARD]: a write that runs
  // off either end faults instead of landing in whatever the kernel mapped next to it (another
  // arena's descriptors, this one's word array). ARENA-ALIGN: base aligned to the largest block.
  auto a = platform::reserve(bytes + 2 * block, block);
  if (!a.ok()) return a.error();
  m->guard_bytes_ = block;
  m->base_ = reinterpret_cast<std::uintptr_t>(a.value()) + block;
  m->bytes_ = bytes;
  if (Error e = platform::commit(reinterpret_cast<void*>(m->base_), bytes)) return e;  // ~Memmap releases both ranges
  // MEMDESC-PTR: descriptors live in a memmap like this one (the metadata region); every
  // address in a word must fit 47 bits.
  if (m->base_ + bytes > (std::uintptr_t{1} << MemdescWord::kPtrBits))
    return Error{Errc::invalid_config, 0, "arena ends above 2^47"};

  m->meta_.words.store(m->pages_ * sizeof(std::uint64_t), std::memory_order_relaxed);
  return m;
}

Memmap::~Memmap() {
  // The address range may be mapped again by anyone: it must not keep the arena's poison.
  if (asan_regions_) {
    std::uint64_t regions = (bytes_ + (std::uint64_t{1} << kAsanRegionShift) - 1) >> kAsanRegionShift;
    for (std::uint64_t r = 0; r < regions; ++r)
      if (asan_regions_[r / 64].load(std::memory_order_relaxed) & (std::uint64_t{1} << (r % 64)))
        asan::unpoison(reinterpret_cast<void*>(base_ + (r << kAsanRegionShift)),
                       std::min<std::uint64_t>(std::uint64_t{1} << kAsanRegionShift, bytes_ - (r << kAsanRegionShift)));
  }
  if (base_) platform::release(reinterpret_cast<void*>(base_ - guard_bytes_), bytes_ + 2 * guard_bytes_);
  platform::release(words_, words_bytes_);
}

std::size_t Memmap::word_array_resident_bytes() const { return platform::resident_bytes(words_, words_bytes_); }

void Memmap::check_block_words(const char* id, const char* what, std::uint64_t pfn, std::uint64_t n,
                               MemdescWord w) const {
  for (std::uint64_t i = 1; i < n; ++i)
    if (word(pfn + i) != w)
      report_invariant(id, "page %llu of the %s at pfn %llu has word %s (the first page: %s)",
                       static_cast<unsigned long long>(pfn + i), what, static_cast<unsigned long long>(pfn),
                       to_string(word(pfn + i)).c_str(), to_string(w).c_str());
}

}  // namespace memdesc::core

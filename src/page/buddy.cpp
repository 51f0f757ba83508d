// page/buddy.cpp — see buddy.hpp.
#include "page/buddy.hpp"

#include "base/base.hpp"

namespace memdesc::page {

namespace {
// Bits of the order-k bitmap of a zone of `pages` pages: pairs below max_order, blocks at it.
std::uint64_t bitmap_bits(std::uint64_t pages, unsigned k, unsigned max_order) {
  return k == max_order ? pages >> k : pages >> (k + 1);
}
}  // namespace

std::size_t BuddyZone::bitmap_words(const core::Memmap& mm, core::ZoneId id) {
  std::uint64_t pages = mm.zone_pages(id);
  if (pages == 0) return 0;
  std::size_t words = 0;
  for (unsigned k = 0; k <= mm.max_order(); ++k) words += core::HierBitmap::words_for(bitmap_bits(pages, k, mm.max_order()));
  return words;
}

void BuddyZone::init(core::Memmap& mm, core::ZoneId id, std::uint64_t* storage) {
  mm_ = &mm;
  id_ = id;
  start_ = mm.zone_start(id);
  pages_ = mm.zone_pages(id);
  max_order_ = mm.max_order();
  if (pages_ == 0) return;  // an empty zone: every allocation falls through
  for (unsigned k = 0; k <= max_order_; ++k) {
    std::uint64_t nbits = bitmap_bits(pages_, k, max_order_);
    free_[k].init(nbits, storage);
    storage += core::HierBitmap::words_for(nbits);
  }
  // Every max-order block starts free and clean: set the top bitmap; the words are already the
  // zero word (BUDDY-WORD) because the word array is fresh.
  free_[max_order_].set_all();
  nr_free_[max_order_] = pages_ >> max_order_;
  free_pages_ = pages_;
}

bool BuddyZone::is_free_head(std::uint64_t pfn, unsigned order) const {
  MemdescWord w = mm_->word(pfn);
  return w.is(MemdescType::Buddy) && w.buddy_head() && w.buddy_order() == order;
}

std::uint64_t BuddyZone::block_of(std::uint64_t bit, unsigned order) const {
  if (order == max_order_) return start_ + (bit << order);
  std::uint64_t lower = start_ + (bit << (order + 1));
  return is_free_head(lower, order) ? lower : lower + (std::uint64_t{1} << order);
}

void BuddyZone::set_head(std::uint64_t pfn, unsigned order, bool dirty) const {
  mm_->set_word(pfn, MemdescWord::buddy_head(order, dirty));
}

Block BuddyZone::alloc_locked(unsigned order) {
  unsigned k = order;
  while (k <= max_order_ && nr_free_[k] == 0) ++k;
  if (k > max_order_) return {};
  std::uint64_t bit = free_[k].find_first();
  MEMDESC_ASSERT(bit != core::HierBitmap::kNone);
  std::uint64_t pfn = block_of(bit, k);
  free_[k].clear(bit);
  --nr_free_[k];
  bool dirty = mm_->word(pfn).buddy_dirty();
  // Split: keep the lower half, free the upper half at each order on the way down. The kept
  // half is now the one not free, so the pair's bit says "the upper one" (BUDDY-PAIR).
  while (k > order) {
    --k;
    std::uint64_t upper = pfn + (std::uint64_t{1} << k);
    free_[k].set(bit_of(upper, k));
    ++nr_free_[k];
    set_head(upper, k, dirty);
  }
  mm_->set_word(pfn, MemdescWord::buddy(dirty));  // no longer a free head
  free_pages_ -= std::uint64_t{1} << order;
  return {pfn, dirty};
}

void BuddyZone::free_locked(std::uint64_t pfn, unsigned order, bool dirty) {
  mm_->set_words(pfn, std::uint64_t{1} << order, MemdescWord::buddy(false));
  insert_locked(pfn, order, dirty);
}

void BuddyZone::insert_locked(std::uint64_t pfn, unsigned order, bool dirty) {
  MEMDESC_ASSERT((pfn & ((std::uint64_t{1} << order) - 1)) == 0);  // BUDDY-ALIGN
  free_pages_ += std::uint64_t{1} << order;
  while (order < max_order_) {
    std::uint64_t bit = bit_of(pfn, order);
    if (!free_[order].test(bit)) break;
    // BUDDY-PAIR: one half of our pair is free, and it is not us: the buddy. Merge.
    std::uint64_t buddy = pfn ^ (std::uint64_t{1} << order);  // same zone: ZONE-ALIGN
    free_[order].clear(bit);
    --nr_free_[order];
    dirty |= mm_->word(buddy).buddy_dirty();
    // The higher of the pair becomes an interior page of the merged block: clean word.
    mm_->set_word(pfn > buddy ? pfn : buddy, MemdescWord::buddy(false));
    pfn &= buddy;
    ++order;
  }
  free_[order].set(bit_of(pfn, order));
  ++nr_free_[order];
  set_head(pfn, order, dirty);
}

void BuddyZone::isolate_locked(std::uint64_t pfn, unsigned order) {
  MEMDESC_CHECK("BUDDY-BITMAP", free_[order].test(bit_of(pfn, order)) && block_of(bit_of(pfn, order), order) == pfn);
  free_[order].clear(bit_of(pfn, order));
  --nr_free_[order];
  free_pages_ -= std::uint64_t{1} << order;
  mm_->set_word(pfn, MemdescWord::buddy(mm_->word(pfn).buddy_dirty()));  // no longer a free head
}

bool BuddyZone::covers_free_locked(std::uint64_t pfn) const {
  if (pfn < start_ || pfn >= start_ + pages_) return false;
  for (unsigned k = 0; k <= max_order_; ++k) {
    std::uint64_t head = pfn & ~((std::uint64_t{1} << k) - 1);  // zones start max-block aligned (ZONE-ALIGN)
    std::uint64_t bit = bit_of(head, k);
    if (free_[k].test(bit) && block_of(bit, k) == head) return true;
  }
  return false;
}

std::uint64_t BuddyZone::next_free_locked(unsigned order, std::uint64_t from_pfn) const {
  if (pages_ == 0 || from_pfn >= start_ + pages_) return kNoPfn;
  for (std::uint64_t bit = free_[order].find_next(bit_of(std::max(from_pfn, start_), order));
       bit != core::HierBitmap::kNone; bit = free_[order].find_next(bit + 1)) {
    std::uint64_t pfn = block_of(bit, order);
    if (pfn >= from_pfn) return pfn;  // (the lower half of the first pair may lie before from_pfn)
  }
  return kNoPfn;
}

void BuddyZone::validate_locked() const {
  if (pages_ == 0) return;
  std::uint64_t total = 0;
  // covered_until: every free block found so far lies below this pfn when walking in address
  // order; blocks of different orders are walked merged by address to detect overlap.
  std::uint64_t pos[MemdescWord::kMaxOrder + 1];  // next set bit per order
  for (unsigned k = 0; k <= max_order_; ++k) {
    if (!free_[k].summary_consistent()) report_invariant("HBITMAP-SUMMARY", "zone %s order %u", core::zone_name(id_), k);
    pos[k] = free_[k].find_first();
  }
  std::uint64_t count[MemdescWord::kMaxOrder + 1] = {};
  std::uint64_t covered_until = start_;
  for (;;) {
    // The free block with the lowest pfn among all orders.
    unsigned best = max_order_ + 1;
    std::uint64_t best_pfn = kNoPfn;
    for (unsigned k = 0; k <= max_order_; ++k) {
      if (pos[k] == core::HierBitmap::kNone) continue;
      std::uint64_t p = block_of(pos[k], k);
      if (p < best_pfn) best_pfn = p, best = k;
    }
    if (best > max_order_) break;
    unsigned k = best;
    std::uint64_t pfn = best_pfn, n = std::uint64_t{1} << k;
    if (pfn < covered_until)
      report_invariant("BUDDY-WORD", "zone %s: free block pfn %llu order %u overlaps another free block",
                       core::zone_name(id_), static_cast<unsigned long long>(pfn), k);
    MemdescWord head = mm_->word(pfn);
    bool head_ok = head.is(MemdescType::Buddy) && head.is_valid() &&
                   (k == max_order_ ? (!head.buddy_head() || head.buddy_order() == k) : is_free_head(pfn, k));
    if (!head_ok)
      report_invariant("BUDDY-WORD", "zone %s: free block pfn %llu has word %s", core::zone_name(id_),
                       static_cast<unsigned long long>(pfn), to_string(head).c_str());
    for (std::uint64_t i = 1; i < n; ++i)
      if (mm_->word(pfn + i).raw() != 0)
        report_invariant("BUDDY-WORD", "zone %s: interior page pfn %llu of free block %llu has word %s",
                         core::zone_name(id_), static_cast<unsigned long long>(pfn + i),
                         static_cast<unsigned long long>(pfn), to_string(mm_->word(pfn + i)).c_str());
    if (k < max_order_ && is_free_head(pfn ^ n, k))
      report_invariant("BUDDY-MERGED", "zone %s: buddies pfn %llu and %llu of order %u are both free",
                       core::zone_name(id_), static_cast<unsigned long long>(pfn),
                       static_cast<unsigned long long>(pfn ^ n), k);
    covered_until = pfn + n;
    total += n;
    ++count[k];
    pos[k] = free_[k].find_next(pos[k] + 1);
  }
  for (unsigned k = 0; k <= max_order_; ++k)
    if (count[k] != nr_free_[k])
      report_invariant("BUDDY-COUNT", "zone %s order %u: %llu blocks in bitmap, counter says %llu",
                       core::zone_name(id_), k, static_cast<unsigned long long>(count[k]),
                       static_cast<unsigned long long>(nr_free_[k]));
  if (total != free_pages_)
    report_invariant("BUDDY-COUNT", "zone %s: %llu free pages in bitmaps, counter says %llu", core::zone_name(id_),
                     static_cast<unsigned long long>(total), static_cast<unsigned long long>(free_pages_));
}

}  // namespace memdesc::page

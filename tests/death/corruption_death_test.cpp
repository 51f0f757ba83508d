// Corruption tests: each validate() check fires on a state corrupted in exactly the way it
// checks, and names its invariant ID. State only an allocator can reach (a zone's counters, a
// pool's page count) is reached through a test-access friend (BuddyZoneTestAccess,
// PoolTestAccess, ArenaTestAccess); bitmaps through storage the test owns.
#include <gtest/gtest.h>
#include <memdesc/zram.hpp>

#include <cstring>
#include <vector>

#include "base/asan.hpp"
#include "folio/folio.hpp"
#include "frag/frag.hpp"
#include "page/page.hpp"
#include "slab/slab.hpp"
#include "test_support.hpp"
#include "zsmalloc/zsmalloc.hpp"

using namespace memdesc;

namespace {

class Corruption : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

std::string violated(const char* id) { return std::string("memdesc: invariant ") + id + " violated"; }

template <class T>
T* desc_of(Arena& a, const void* p) {
  return a.virt_to_memdesc(p)->desc_as<T>();
}

// The page layer on its own memmap, as an Arena builds it, so a test can write page words.
struct PageLayer {
  std::unique_ptr<core::Memmap> mm;
  std::unique_ptr<page::PageAllocator> pa;
  explicit PageLayer(bool thread_cache) {
    mm = std::move(core::Memmap::create(16 << 20, 10, 0).value());
    page::PageAllocConfig c;
    c.thread_cache = thread_cache;
    pa = std::move(page::PageAllocator::create(*mm, c).value());
  }
};

// ---- page layer --------------------------------------------------------------------------

}  // namespace

// One zone on its own memmap and storage: the test owns the bitmap words and, through this,
// the counters.
namespace memdesc::page {
struct BuddyZoneTestAccess {
  std::unique_ptr<core::Memmap> mm = std::move(core::Memmap::create(16 << 20, 10, 0).value());
  std::vector<std::uint64_t> storage = std::vector<std::uint64_t>(BuddyZone::bitmap_words(*mm, core::ZoneId::Normal));
  BuddyZone zone;
  BuddyZoneTestAccess() { zone.init(*mm, core::ZoneId::Normal, storage.data()); }
  std::uint64_t& nr_free(unsigned k) NO_THREAD_SAFETY_ANALYSIS { return zone.nr_free_[k]; }
  std::uint64_t& free_pages() NO_THREAD_SAFETY_ANALYSIS { return zone.free_pages_; }
  void validate() {
    LockGuard g(zone.lock);
    zone.validate_locked();
  }
};
}  // namespace memdesc::page

namespace {
using ZoneLayer = page::BuddyZoneTestAccess;

TEST_F(Corruption, BuddyCountABlockCounterDrifts) {
  EXPECT_DEATH(
      {
        ZoneLayer z;
        ++z.nr_free(3);
        z.validate();
      },
      violated("BUDDY-COUNT") + ": zone Normal order 3: 0 blocks in bitmap, counter says 1");
}

TEST_F(Corruption, BuddyCountTheFreePageCounterDrifts) {
  EXPECT_DEATH(
      {
        ZoneLayer z;
        z.free_pages() -= 1;
        z.validate();
      },
      violated("BUDDY-COUNT") + ": zone Normal: 4096 free pages in bitmaps, counter says 4095");
}

TEST_F(Corruption, HbitmapSummaryABitWithoutItsSummary) {
  EXPECT_DEATH(
      {
        ZoneLayer z;
        z.storage[0] ^= 1;  // one level of order 0's bitmap, the others untouched
        z.validate();
      },
      violated("HBITMAP-SUMMARY") + ": zone Normal order 0");
}

// BUDDY-BITMAP: purge isolates only blocks the bitmap holds as free.
TEST_F(Corruption, BuddyBitmapIsolatingABlockThatIsNotFree) {
  EXPECT_DEATH(
      {
        ZoneLayer z;
        LockGuard g(z.zone.lock);
        page::Block b = z.zone.alloc_locked(0);
        z.zone.isolate_locked(b.pfn, 0);
      },
      violated("BUDDY-BITMAP"));
}

TEST_F(Corruption, BuddyWordAFreeHeadLosesItsHeadBit) {
  EXPECT_DEATH(
      {
        PageLayer l(false);
        (void)l.pa->alloc(0, GFP_NONE, MemdescWord::misc(MiscSubtype::Pages, 0));  // pfn 0; pfn 1 heads a free block
        l.mm->set_word(1, MemdescWord::buddy(true));
        l.pa->validate();
      },
      violated("BUDDY-WORD") + ": zone Normal: free block pfn 1 has word");
}

TEST_F(Corruption, BuddyMergedTwoFreeBuddies) {
  EXPECT_DEATH(
      {
        PageLayer l(false);
        (void)l.pa->alloc(0, GFP_NONE, MemdescWord::misc(MiscSubtype::Pages, 0));
        l.mm->set_word(0, MemdescWord::buddy_head(0, false));  // the allocated page says "free head" too
        l.pa->validate();
      },
      violated("BUDDY-MERGED"));
}

TEST_F(Corruption, BuddyWordAnInteriorPageOfAFreeBlockIsWritten) {
  EXPECT_DEATH(
      {
        PageLayer l(false);  // every max-order block free
        l.mm->set_word(5, MemdescWord::misc(MiscSubtype::Pages, 0));
        l.pa->validate();
      },
      violated("BUDDY-WORD") + ": zone Normal: interior page pfn 5 of free block 0 has word Misc");
}

TEST_F(Corruption, BuddyWordTwoFreeBlocksOverlap) {
  EXPECT_DEATH(
      {
        page::BuddyZoneTestAccess z;
        {
          LockGuard g(z.zone.lock);
          z.zone.insert_locked(0, 0, false);  // pfn 0 lies in the free max-order block 0 already
        }
        z.validate();
      },
      violated("BUDDY-WORD") + ": zone Normal: free block pfn 0 order 10 overlaps another free block");
}

TEST_F(Corruption, PcpWordACachedBlockInTheWrongList) {
  EXPECT_DEATH(
      {
        PageLayer l(true);
        MemdescWord w = MemdescWord::misc(MiscSubtype::Pages, 0);
        void* p = l.pa->alloc(0, GFP_NONE, w);
        void* q = l.pa->alloc(0, GFP_NONE, w);
        l.pa->free(p, w, "test");
        l.pa->free(q, w, "test");
        page::ThreadPageCache* c = page::attach_thread_cache(l.pa.get());
        page::PcpList& order1 = c->lists[0][1];
        std::uint64_t odd = l.mm->pfn(p) | 1;  // a pfn no order-1 block starts at
        ASSERT_GT(order1.high, 0u);
        order1.pfns[0] = static_cast<std::uint32_t>(odd);
        order1.count.store(1);
        l.pa->validate();
      },
      violated("PCP-WORD") + ": cached block pfn [0-9]+ is in the wrong list \\(zone 0, order 1\\)");
}

TEST_F(Corruption, PcpWordACachedBlockLosesItsBuddyWord) {
  EXPECT_DEATH(
      {
        PageLayer l(true);
        MemdescWord w = MemdescWord::misc(MiscSubtype::Pages, 0);
        void* p = l.pa->alloc(0, GFP_NONE, w);
        l.pa->free(p, w, "test");  // into this thread's cache
        l.mm->set_word(l.mm->pfn(p), w);
        l.pa->validate();
      },
      violated("PCP-WORD") + ": cached block pfn [0-9]+ has word Misc");
}

// ---- slab ----------------------------------------------------------------------------------

TEST_F(Corruption, SlabWordDescriptorDisagreesWithTheWord) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(64);
        desc_of<slab::Slab>(*a, p)->pfn += 1;
        a->validate();
      },
      violated("SLAB-WORD") + ": pfn [0-9]+: word Slab.* does not match its descriptor");
}

TEST_F(Corruption, SlabCountInuseDisagreesWithTheFreelist) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(64);
        desc_of<slab::Slab>(*a, p)->inuse += 1;
        a->validate();
      },
      violated("SLAB-COUNT") + ": cache kmalloc-64 slab pfn [0-9]+: inuse");
}

TEST_F(Corruption, SlabCountFreelistLinkOverwritten) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        std::vector<void*> v;
        for (int i = 0; i < 8; ++i) v.push_back(a->kmalloc(64));
        a->kfree(v[3]);
        a->drain_thread_cache();  // v[3] back on its slab's freelist
        asan::unpoison(v[3], 8);  // (the corruption a stray write would make; ASan would report the write itself)
        std::memset(v[3], 0xee, 8);  // its link
        a->validate();
      },
      violated("SLAB-COUNT") + ": cache kmalloc-64 slab pfn [0-9]+: freelist corrupted");
}

TEST_F(Corruption, SlabListOnTheWrongList) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(64);
        a->drain_thread_cache();
        desc_of<slab::Slab>(*a, p)->list = slab::SlabList::Empty;  // it is partial
        a->validate();
      },
      violated("SLAB-LIST") + ": cache kmalloc-64 slab pfn [0-9]+ \\(inuse 1 of [0-9]+\\) is on the wrong list");
}

TEST_F(Corruption, SlabListACounterDrifts) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(64);
        slab::KmemCache* c = desc_of<slab::Slab>(*a, p)->cache;
        {
          LockGuard g(c->lock);
          ++c->nr_partial;
        }
        a->validate();
      },
      violated("SLAB-LIST") + ": cache kmalloc-64: [0-9]+ partial / [0-9]+ empty slabs found, counters say [0-9]+ /");
}

TEST_F(Corruption, SlabWordAPageOfTheSlabLosesItsWord) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        void* p = a->kmalloc(3000);  // kmalloc-4k: slabs of several pages
        core::Memmap& arena = ArenaTestAccess::arena(*a);
        std::uint64_t pfn = desc_of<slab::Slab>(*a, p)->pfn;
        ASSERT_GT(desc_of<slab::Slab>(*a, p)->order, 0u);
        arena.set_word(pfn + 1, MemdescWord::misc(MiscSubtype::Pages, 0));
        a->validate();
      },
      violated("SLAB-WORD") + ": page [0-9]+ of the slab at pfn [0-9]+ has word Misc");
}

TEST_F(Corruption, MagGrowCapacityOutOfRange) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("corrupt", 100).value();
        c->mag_cap.store(0);
        a->validate();
      },
      violated("MAG-GROW") + ": cache corrupt: magazine capacity 0");
}

TEST_F(Corruption, DepotMaxTooManyMagazines) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        KmemCache* c = a->kmem_cache_create("corrupt", 100).value();
        {
          LockGuard g(c->lock);
          c->nempty = slab::kDepotMax;
          c->nfull = slab::kDepotMax;
        }
        a->validate();
      },
      violated("DEPOT-MAX") + ": cache corrupt");
}

// META-OOB: a layer's own slab met in the arena (here: a descriptor slab's word copied onto an
// arena page), a user's slab met in the region, and a region page that holds anything but a slab.
TEST_F(Corruption, MetaOobADescriptorSlabInTheArena) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        core::Memmap& meta = ArenaTestAccess::metadata_region(*a);
        core::Memmap& arena = ArenaTestAccess::arena(*a);
        auto* s = desc_of<slab::Slab>(*a, a->kmalloc(64));  // a slab descriptor: in the region
        void* page = a->alloc_pages(0);
        arena.set_word(arena.pfn(page), meta.word(meta.pfn(s)));
        a->validate();
      },
      violated("META-OOB") + ": pfn [0-9]+: a slab of cache slab_descriptor in the arena");
}

TEST_F(Corruption, MetaOobAUserSlabInTheRegion) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        core::Memmap& meta = ArenaTestAccess::metadata_region(*a);
        void* p = a->kmalloc(64);
        auto* s = desc_of<slab::Slab>(*a, p);  // in a slab of the descriptor cache, in the region
        meta.set_word(meta.pfn(s), *a->virt_to_memdesc(p));  // that page now says "kmalloc-64 slab"
        a->validate();
      },
      violated("META-OOB") + ": pfn [0-9]+: a slab of cache kmalloc-64 in the metadata region");
}

TEST_F(Corruption, MetaOobARegionPageThatIsNotASlab) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        core::Memmap& meta = ArenaTestAccess::metadata_region(*a);
        auto* s = desc_of<slab::Slab>(*a, a->kmalloc(64));
        meta.set_word(meta.pfn(s), MemdescWord::misc(MiscSubtype::Pages, 0));
        a->validate();
      },
      violated("META-OOB") + ": metadata region pfn [0-9]+ has word Misc");
}

// ---- folios and fragments -------------------------------------------------------------------

TEST_F(Corruption, FolioRefPublishedWithRefcountZero) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(1);
        f->refcount.store(0);
        a->validate();
      },
      violated("FOLIO-REF"));
}

TEST_F(Corruption, FolioSameDescriptorNamesAnotherPfn) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(1);
        f->pfn += 2;
        a->validate();
      },
      violated("FOLIO-SAME") + ": pfn [0-9]+: word .* but the folio says pfn");
}

TEST_F(Corruption, FolioLockImpossibleLockWord) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        Folio* f = a->folio_alloc(0);
        f->lock_word.store(7);
        a->validate();
      },
      violated("FOLIO-LOCK"));
}

TEST_F(Corruption, FragBiasRefcountZero) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        void* p = nc.alloc(100);
        desc_of<frag::PageFrag>(*a, p)->refcount.store(0);
        a->validate();
      },
      violated("FRAG-BIAS"));
}

TEST_F(Corruption, FragSameDescriptorNamesAnotherOrder) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        PageFragCache nc = a->page_frag_cache();
        void* p = nc.alloc(100);
        desc_of<frag::PageFrag>(*a, p)->order = 1;
        a->validate();
      },
      violated("FRAG-SAME") + ": pfn [0-9]+: word .* but the descriptor says pfn");
}

// ---- zsmalloc and the compressed store -------------------------------------------------------

struct ZsSetup {
  std::unique_ptr<Arena> a = test::make_arena(16 << 20);
  std::unique_ptr<ZsPool> pool = std::move(a->zs_create_pool({.name = "c"}).value());
  std::vector<ZsHandle> hs;
  ZsSetup() {
    for (int i = 0; i < 10; ++i) hs.push_back(pool->malloc(200).value());
  }
  zsmalloc::Zspage* zspage() { return desc_of<zsmalloc::Zspage>(*a, pool->pages().front().addr); }
};

TEST_F(Corruption, ZsLockHeldWithNoAccess) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.zspage()->lock.store(2);
        s.pool->validate();
      },
      violated("ZS-LOCK"));
}

TEST_F(Corruption, ZsFullnessWrongGroup) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.zspage()->fullness ^= 1;  // says another group than the list it sits on
        s.pool->validate();
      },
      violated("ZS-FULLNESS"));
}

TEST_F(Corruption, ZsFreelistCountDisagreesWithInuse) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.zspage()->inuse += 1;  // fullness group unchanged (10 -> 11 of 20 objects: 50-59 %)
        s.pool->validate();
      },
      violated("ZS-FREELIST") + ": pool c class [0-9]+ zspage 0x[0-9a-f]+: [0-9]+ free \\+ [0-9]+ in use");
}

TEST_F(Corruption, ZsClassCountAGroupCounterDrifts) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        zsmalloc::Zspage* zs = s.zspage();
        zsmalloc::SizeClass* c = zs->cls.load();
        {
          LockGuard g(c->lock);
          ++c->nr_group[zs->fullness];
        }
        s.pool->validate();
      },
      violated("ZS-CLASS-COUNT") + ": pool c class [0-9]+ group [0-9]+: 1 zspages listed, counter 2");
}

TEST_F(Corruption, ZsClassCountTheObjectCounterDrifts) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        zsmalloc::SizeClass* c = s.zspage()->cls.load();
        {
          LockGuard g(c->lock);
          ++c->objs_inuse;
        }
        s.pool->validate();
      },
      violated("ZS-CLASS-COUNT") + ": pool c class [0-9]+: 1 zspages / 10 objects found, counters 1 / 11");
}

}  // namespace
namespace memdesc::zsmalloc {
struct PoolTestAccess {
  static std::atomic<std::uint64_t>& pages_allocated(Pool& p) { return p.pages_allocated_; }
};
}  // namespace memdesc::zsmalloc
namespace {

TEST_F(Corruption, ZsPoolPagesTheCounterDrifts) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        zsmalloc::PoolTestAccess::pages_allocated(*s.zspage()->pool.load()) += 1;
        s.pool->validate();
      },
      violated("ZS-POOL-PAGES") + ": pool c: zspages hold [0-9]+ pages, pages_allocated [0-9]+");
}

TEST_F(Corruption, ZsHugeFlagDisagreesWithTheGeometry) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        zsmalloc::SizeClass* c = s.zspage()->cls.load();
        c->huge = !c->huge;
        s.pool->validate();
      },
      violated("ZS-HUGE"));
}

TEST_F(Corruption, ZsHandleDoesNotLeadBack) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        *reinterpret_cast<std::uint64_t*>(s.hs[4]) += 1;  // the handle slot's obj: the next index
        s.pool->validate();
      },
      violated("ZS-HANDLE"));
}

TEST_F(Corruption, ZsFreelistBroken) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.pool->free(s.hs[9]);  // slot 9 heads the free list: its header holds the next free index
        zsmalloc::Zspage* zs = s.zspage();
        ZsPageInfo pi = s.pool->pages().front();
        std::uint64_t bad = std::uint64_t{3} << 1;  // points at an allocated slot
        std::uint64_t off = std::uint64_t{zs->freeobj} * pi.class_size;  // in the first page: 10 small objects
        ASSERT_LT(off, kPageSize);
        asan::unpoison(static_cast<char*>(pi.addr) + off, 8);  // headers are poisoned (asan preset)
        std::memcpy(static_cast<char*>(pi.addr) + off, &bad, 8);
        s.pool->validate();
      },
      violated("ZS-FREELIST") + ": \\(link & kAllocatedTag\\) == 0");
}

TEST_F(Corruption, ZsFreelistACycle) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.pool->free(s.hs[9]);
        zsmalloc::Zspage* zs = s.zspage();
        ZsPageInfo pi = s.pool->pages().front();
        std::uint64_t self = std::uint64_t{zs->freeobj} << 1;  // the head links to itself
        std::uint64_t off = std::uint64_t{zs->freeobj} * pi.class_size;
        ASSERT_LT(off, kPageSize);
        asan::unpoison(static_cast<char*>(pi.addr) + off, 8);
        std::memcpy(static_cast<char*>(pi.addr) + off, &self, 8);
        s.pool->validate();
      },
      violated("ZS-FREELIST") + ": pool c class [0-9]+ zspage 0x[0-9a-f]+: free list broken at slot 9");
}

TEST_F(Corruption, ZsWordADescriptorOnAListIsNotLive) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        s.zspage()->state.store(zsmalloc::ZspageState::Dead);
        s.pool->validate();
      },
      violated("ZS-WORD") + ": zs->state.load\\(\\) == ZspageState::Live");
}

TEST_F(Corruption, ZsWordAPageOfTheChainLosesItsWord) {
  EXPECT_DEATH(
      {
        ZsSetup s;
        zsmalloc::Zspage* zs = s.zspage();
        zs->pfn[0] ^= 1;  // the chain names a page whose word is not this zspage's
        s.pool->validate();
      },
      violated("ZS-WORD") + ": pool c: page [0-9]+ \\(pfn [0-9]+\\) of zspage 0x[0-9a-f]+ holds");
}

TEST_F(Corruption, ZramRoundTripStoredObjectDamaged) {
  EXPECT_DEATH(
      {
        auto a = test::make_arena(16 << 20);
        ZramConfig zc;
        zc.pages = 4;
        auto z = ZramStore::create(std::move(a->zs_create_pool({}).value()), zc).value();
        std::vector<char> page(kPageSize);
        std::vector<char> back(kPageSize);
        for (std::size_t i = 0; i < kPageSize; ++i) page[i] = static_cast<char>(i % 61 == 0 ? i : 'a' + i % 7);
        ASSERT_FALSE(z->store(1, page.data()));
        for (const ZsPageInfo& pi : z->pool().pages()) {
          asan::unpoison(static_cast<char*>(pi.addr) + 64, 256);  // (as above: the damage, not the write)
          std::memset(static_cast<char*>(pi.addr) + 64, 0x7f, 256);
        }
        (void)z->load(1, back.data());
      },
      "memdesc: (invariant ZRAM-ROUNDTRIP violated|bad handle)");
}

}  // namespace

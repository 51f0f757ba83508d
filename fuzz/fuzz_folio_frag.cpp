// fuzz/fuzz_folio_frag.cpp — folios (alloc, get, lookup, put) and page fragments (both block
// kinds) against a model: every live folio and fragment keeps its pattern, lookups find exactly
// the live folios, and everything put back leaves the arena whole.
#include <vector>

#include "fuzz_support.hpp"

using namespace memdesc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Arena* a = &fuzz::arena();
  struct LiveFolio {
    Folio* f;
    int refs;
    std::uint64_t tag;
  };
  struct LiveFrag {
    void* p;
    std::size_t n;
    std::uint64_t tag;
  };
  std::vector<LiveFolio> folios;
  std::vector<LiveFrag> frags;
  PageFragCache nc[2] = {a->page_frag_cache(FragBlock::Frag), a->page_frag_cache(FragBlock::Folio)};
  std::uint64_t tag = 0;
  fuzz::arm_faults(in);
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0: {
        unsigned order = in.ConsumeIntegralInRange<unsigned>(0, std::min(4u, a->max_order()));
        Folio* f = a->folio_alloc(order, GFP_NONE, in.ConsumeBool() ? FolioKind::Anon : FolioKind::File);
        if (!f) break;
        FUZZ_CHECK(folio_ref_count(f) == 1 && folio_order(f) == order);
        fuzz::fill(a->folio_address(f), 128, ++tag);
        folios.push_back({f, 1, tag});
        break;
      }
      case 1:
        if (!folios.empty()) {  // another reference, by lookup from a page of it
          LiveFolio& l = folios[in.ConsumeIntegralInRange<std::size_t>(0, folios.size() - 1)];
          char* page = static_cast<char*>(a->folio_address(l.f)) + in.ConsumeIntegralInRange<std::size_t>(0, folio_nr_pages(l.f) - 1) * kPageSize;
          Folio* g = a->folio_lookup(page);
          FUZZ_CHECK(g == l.f && a->page_folio(page) == l.f);
          ++l.refs;
        }
        break;
      case 2:
        if (!folios.empty()) {
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, folios.size() - 1);
          FUZZ_CHECK(fuzz::intact(a->folio_address(folios[i].f), 128, folios[i].tag));
          FUZZ_CHECK(folio_ref_count(folios[i].f) == folios[i].refs);
          a->folio_put(folios[i].f);
          if (--folios[i].refs == 0) {
            folios[i] = folios.back();
            folios.pop_back();
          }
        }
        break;
      case 3:
      case 4: {
        int k = in.ConsumeBool();
        std::size_t n = in.ConsumeIntegralInRange<std::size_t>(1, in.ConsumeBool() ? 300 : kFragMaxSize);
        std::size_t align = std::size_t{1} << in.ConsumeIntegralInRange<unsigned>(0, 12);
        void* p = nc[k].alloc_align(n, align);
        if (!p) break;
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
        fuzz::fill(p, n, ++tag);
        frags.push_back({p, n, tag});
        break;
      }
      case 5:
        if (!frags.empty()) {
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, frags.size() - 1);
          FUZZ_CHECK(fuzz::intact(frags[i].p, frags[i].n, frags[i].tag));
          a->page_frag_free(frags[i].p);
          frags[i] = frags.back();
          frags.pop_back();
        }
        break;
      case 6:
        nc[in.ConsumeBool()].drain();
        break;
    }
  }
  fuzz::disarm_faults();

  for (const LiveFrag& l : frags) {
    FUZZ_CHECK(fuzz::intact(l.p, l.n, l.tag));
    a->page_frag_free(l.p);
  }
  for (LiveFolio& l : folios)
    while (l.refs--) a->folio_put(l.f);
  for (PageFragCache& c : nc) c = PageFragCache();  // drained and gone before the arena
  fuzz::end_of_input(*a);
  return 0;
}

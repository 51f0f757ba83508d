// fuzz/fuzz_buddy.cpp — page blocks against a model: every live block keeps its pattern and its
// word, frees in any order coalesce back to a whole arena.
#include <vector>

#include "fuzz_support.hpp"

using namespace memdesc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Arena* a = &fuzz::arena();
  struct Live {
    void* p;
    unsigned order;
    std::uint64_t tag;
  };
  std::vector<Live> live;
  fuzz::Intervals model;
  std::uint64_t tag = 0;
  fuzz::arm_faults(in);
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0:
      case 1: {
        unsigned order = in.ConsumeIntegralInRange<unsigned>(0, a->max_order());
        Gfp gfp = in.ConsumeBool() ? GFP_MOVABLE : GFP_NONE;
        if (in.ConsumeBool()) gfp |= GFP_ZERO;
        if (in.ConsumeBool()) gfp |= GFP_NOCACHE;
        void* p = a->alloc_pages(order, gfp);
        if (!p) break;  // out of memory: fine
        FUZZ_CHECK(*a->virt_to_memdesc(static_cast<char*>(p) + (kPageSize << order) - 1) == MemdescWord::misc(MiscSubtype::Pages, order));
        if (gfp & GFP_ZERO)
          for (std::size_t i = 0; i < (kPageSize << order); i += 512) FUZZ_CHECK(static_cast<char*>(p)[i] == 0);
        fuzz::fill(p, 64, ++tag);
        fuzz::fill(static_cast<char*>(p) + (kPageSize << order) - 64, 64, tag);
        model.add(p, kPageSize << order);
        live.push_back({p, order, tag});
        break;
      }
      case 2:
      case 3:
        if (!live.empty()) {
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, live.size() - 1);
          Live l = live[i];
          FUZZ_CHECK(fuzz::intact(l.p, 64, l.tag));
          FUZZ_CHECK(fuzz::intact(static_cast<char*>(l.p) + (kPageSize << l.order) - 64, 64, l.tag));
          a->free_pages(l.p);
          model.remove(l.p);
          live[i] = live.back();
          live.pop_back();
        }
        break;
      case 4:
        if (in.ConsumeBool()) a->drain_thread_cache();
        else (void)a->purge(in.ConsumeIntegralInRange<unsigned>(0, a->max_order()));
        break;
    }
  }
  fuzz::disarm_faults();

  for (const Live& l : live) {
    FUZZ_CHECK(fuzz::intact(l.p, 64, l.tag));
    a->free_pages(l.p);
  }
  fuzz::end_of_input(*a);
  return 0;
}

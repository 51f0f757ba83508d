// fuzz/fuzz_kmalloc.cpp — kmalloc, krealloc, kcalloc and kmem_cache objects against a model:
// every live object keeps its pattern; everything freed, the arena is whole again.
#include <vector>

#include "fuzz_support.hpp"

using namespace memdesc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Arena* a = &fuzz::arena();
  KmemCache* caches[3] = {};
  std::size_t sizes[3] = {};
  for (int i = 0; i < 3; ++i) {
    sizes[i] = in.ConsumeIntegralInRange<std::size_t>(1, 3000);
    SlabFlags f = SLAB_NONE;
    if (in.ConsumeBool()) f |= SLAB_HWCACHE_ALIGN;
    if (in.ConsumeBool()) f |= SLAB_RED_ZONE;
    if (in.ConsumeBool()) f |= SLAB_POISON;
    auto c = a->kmem_cache_create("fuzz", sizes[i], 0, f);
    if (c.ok()) caches[i] = c.value();
  }
  struct Live {
    void* p;
    std::size_t n;
    int cache;  // -1: kmalloc
    std::uint64_t tag;
  };
  std::vector<Live> live;
  fuzz::Intervals model;
  std::uint64_t tag = 0;
  fuzz::arm_faults(in);
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
      case 1: {
        std::size_t n = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::size_t>(0, 256)
                                         : in.ConsumeIntegralInRange<std::size_t>(0, 40000);
        void* p = in.ConsumeBool() ? a->kmalloc(n, in.ConsumeBool() ? GFP_ZERO : GFP_NONE) : a->kcalloc(1, n);
        if (!p) break;
        if (n == 0) {
          FUZZ_CHECK(p == kZeroSizePtr);
          break;
        }
        if (in.ConsumeBool()) FUZZ_CHECK(a->ksize(p) >= n);  // (ksize makes the whole slot the caller's)
        fuzz::fill(p, n, ++tag);
        model.add(p, n);
        live.push_back({p, n, -1, tag});
        break;
      }
      case 2: {
        int c = in.ConsumeIntegralInRange<int>(0, 2);
        if (!caches[c]) break;
        void* p = a->kmem_cache_alloc(caches[c]);
        if (!p) break;
        fuzz::fill(p, sizes[c], ++tag);
        model.add(p, sizes[c]);
        live.push_back({p, sizes[c], c, tag});
        break;
      }
      case 3:
      case 4:
        if (!live.empty()) {
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, live.size() - 1);
          Live l = live[i];
          FUZZ_CHECK(fuzz::intact(l.p, l.n, l.tag));
          if (l.cache < 0) a->kfree(l.p);
          else a->kmem_cache_free(caches[l.cache], l.p);
          model.remove(l.p);
          live[i] = live.back();
          live.pop_back();
        }
        break;
      case 5:
        if (!live.empty()) {  // krealloc keeps the prefix
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, live.size() - 1);
          if (live[i].cache >= 0) break;
          std::size_t n = in.ConsumeIntegralInRange<std::size_t>(1, 20000);
          void* q = a->krealloc(live[i].p, n);
          if (!q) break;  // the old object is untouched
          FUZZ_CHECK(fuzz::intact(q, std::min(n, live[i].n), live[i].tag));
          model.remove(live[i].p);
          model.add(q, n);
          fuzz::fill(q, n, live[i].tag);
          live[i].p = q;
          live[i].n = n;
        }
        break;
    }
  }
  fuzz::disarm_faults();

  for (const Live& l : live) {
    FUZZ_CHECK(fuzz::intact(l.p, l.n, l.tag));
    if (l.cache < 0) a->kfree(l.p);
    else a->kmem_cache_free(caches[l.cache], l.p);
  }
  for (KmemCache* c : caches) a->kmem_cache_destroy(c);
  fuzz::end_of_input(*a);
  return 0;
}

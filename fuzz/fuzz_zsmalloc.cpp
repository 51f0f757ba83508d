// fuzz/fuzz_zsmalloc.cpp — a zsmalloc pool (malloc, free, write, read, compaction, page
// isolation, migration, putback) and a compressed page store on it, against a model: every
// object reads back what was written last, whatever moved; everything freed, the arena is whole.
#include <map>
#include <vector>

#include <memdesc/zram.hpp>

#include "fuzz_support.hpp"

using namespace memdesc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Arena* a = &fuzz::arena();
  // One pool per chain length and one compressed store for the process: a pool's destruction
  // waits for RCU, which would cost more than the input. Each input leaves them empty.
  static std::unique_ptr<ZsPool> pools[kZsMaxChain + 1];
  unsigned chain = in.ConsumeIntegralInRange<unsigned>(kZsMinChain, kZsMaxChain);
  if (!pools[chain]) {
    ZsPoolConfig pc;
    pc.chain = chain;
    pools[chain] = std::move(a->zs_create_pool(pc).value());
  }
  ZsPool* pool = pools[chain].get();
  struct Obj {
    ZsHandle h;
    std::size_t n;
    std::uint64_t tag;
  };
  std::vector<Obj> objs;
  std::vector<char> buf(kZsMaxAllocSize), rd(kZsMaxAllocSize);
  std::vector<const void*> isolated;
  std::uint64_t tag = 0;
  auto check = [&](const Obj& o) {
    const void* p = pool->read_begin(o.h, rd.data(), o.n);
    FUZZ_CHECK(fuzz::intact(p, o.n, o.tag));
    pool->read_end(o.h, p);
  };
  fuzz::arm_faults(in);
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0:
      case 1: {
        std::size_t n = in.ConsumeIntegralInRange<std::size_t>(1, kZsMaxAllocSize);
        auto h = pool->malloc(n);
        if (!h.ok()) break;
        fuzz::fill(buf.data(), n, ++tag);
        pool->write(h.value(), buf.data(), n);
        objs.push_back({h.value(), n, tag});
        break;
      }
      case 2:
        if (!objs.empty()) {
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, objs.size() - 1);
          check(objs[i]);
          pool->free(objs[i].h);
          objs[i] = objs.back();
          objs.pop_back();
        }
        break;
      case 3:
        if (!objs.empty()) check(objs[in.ConsumeIntegralInRange<std::size_t>(0, objs.size() - 1)]);
        break;
      case 4:
        (void)pool->compact();
        break;
      case 5: {  // isolate a page of the pool
        auto pages = pool->pages();
        if (pages.empty()) break;
        const void* pg = pages[in.ConsumeIntegralInRange<std::size_t>(0, pages.size() - 1)].addr;
        if (pool->isolate_page(pg)) isolated.push_back(pg);
        break;
      }
      case 6:
        if (!isolated.empty()) {  // migrate or put back
          std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, isolated.size() - 1);
          ZsMigrateResult r = in.ConsumeBool() ? pool->migrate_page(isolated[i]) : (pool->putback_page(isolated[i]), ZsMigrateResult::migrated);
          if (r == ZsMigrateResult::migrated) {
            isolated[i] = isolated.back();
            isolated.pop_back();
          }
        }
        break;
      case 7:
        pool->validate();
        break;
    }
  }
  fuzz::disarm_faults();

  for (const void* pg : isolated) pool->putback_page(pg);
  for (const Obj& o : objs) {
    check(o);
    pool->free(o.h);
  }
  pool->validate();
  // The compressed stores (lz4, zstd): pages made of the input round-trip.
  static std::unique_ptr<ZramStore> stores[2];
  int algo = size & 1;
  if (!stores[algo]) {
    ZramConfig zc;
    zc.pages = 8;
    zc.algo = algo ? ZramAlgo::zstd : ZramAlgo::lz4;
    auto z = ZramStore::create(std::move(a->zs_create_pool({}).value()), zc);
    FUZZ_CHECK(z.ok());
    stores[algo] = std::move(z.value());
  }
  std::vector<char> page(kPageSize), back(kPageSize);
  for (std::uint64_t i = 0; i < 8; ++i) {
    for (std::size_t b = 0; b < kPageSize; ++b) page[b] = size ? static_cast<char>(data[(i * 31 + b) % size] * (b % 3 == 0)) : 0;
    FUZZ_CHECK(!stores[algo]->store(i, page.data()));
    FUZZ_CHECK(!stores[algo]->load(i, back.data()));
    FUZZ_CHECK(page == back);
  }
  for (std::uint64_t i = 0; i < 8; ++i) stores[algo]->discard(i);
  fuzz::end_of_input(*a);
  return 0;
}

// Property tests: random alloc/free sequences against a simple model, on several small
// configurations. After every step the model's blocks never overlap, each block's pages carry
// its word and its contents; pages are conserved; at the end everything coalesces back into
// max-order blocks.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "test_support.hpp"

using namespace memdesc;

struct ModelConfig {
  const char* name;
  std::size_t size;
  unsigned max_order;
  unsigned movable_percent;
  bool thread_cache;
  unsigned pcp_high, pcp_batch;
};

class BuddyModel : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(BuddyModel, RandomSequencesMatchTheModel) {
  const ModelConfig& mc = GetParam();
  ArenaConfig c;
  c.size = mc.size;
  c.max_order = mc.max_order;
  c.movable_percent = mc.movable_percent;
  c.thread_cache = mc.thread_cache;
  c.pcp_high = mc.pcp_high;
  c.pcp_batch = mc.pcp_batch;
  auto a = test::make_arena(c);
  ASSERT_TRUE(a);
  const std::uint64_t pages = a->pages();

  struct Held { unsigned order; std::uint64_t tag; };
  std::map<std::uint64_t, Held> model;  // pfn -> block
  std::uint64_t held_pages = 0, tag = 0;
  std::mt19937_64 rng(std::hash<std::string>{}(mc.name));

  auto check_block = [&](std::uint64_t pfn, const Held& h) {
    for (std::uint64_t i = 0; i < (1u << h.order); ++i)
      ASSERT_EQ(a->pfn_to_memdesc(pfn + i), MemdescWord::misc(MiscSubtype::Pages, h.order));
    ASSERT_EQ(test::check(a->pfn_to_virt(pfn), kPageSize << h.order, h.tag), SIZE_MAX);
  };

  for (int step = 0; step < 6000; ++step) {
    bool do_alloc = model.empty() || (rng() % 100) < 55;
    if (do_alloc) {
      // Small orders are common, large ones rare.
      unsigned order = static_cast<unsigned>(std::min<std::uint64_t>(mc.max_order, std::countr_zero(rng() | (1ull << 12)) ));
      Gfp gfp = (rng() & 1) ? GFP_MOVABLE : GFP_NONE;
      if (rng() % 4 == 0) gfp |= GFP_ZERO;
      void* p = a->alloc_pages(order, gfp);
      if (!p) {
        ASSERT_EQ(last_error().code, Errc::out_of_memory);
        ASSERT_GT(held_pages + (1u << order), 0u);
        continue;
      }
      std::uint64_t pfn = a->pfn_of(p);
      ASSERT_EQ(pfn % (1u << order), 0u);  // BUDDY-ALIGN
      // No overlap with the neighbours in the model.
      auto next = model.lower_bound(pfn);
      if (next != model.end()) {
        ASSERT_GE(next->first, pfn + (1u << order));
      }
      if (next != model.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + (1u << prev->second.order), pfn);
      }
      if (gfp & GFP_ZERO) {
        auto* w = static_cast<const std::uint64_t*>(p);
        for (std::size_t i = 0; i < (kPageSize << order) / 8; ++i) ASSERT_EQ(w[i], 0u);
      }
      Held h{order, ++tag};
      test::fill(p, kPageSize << order, h.tag);
      model[pfn] = h;
      held_pages += 1u << order;
    } else {
      auto it = model.begin();
      std::advance(it, rng() % model.size());
      check_block(it->first, it->second);
      a->free_pages(a->pfn_to_virt(it->first));
      held_pages -= 1u << it->second.order;
      model.erase(it);
    }
    if (step % 500 == 0) {
      ArenaInfo i = a->info();
      ASSERT_EQ(i.free_pages + i.cached_pages + held_pages, pages);  // pages conserved
      a->validate();
    }
  }
  for (auto& [pfn, h] : model) {
    check_block(pfn, h);
    a->free_pages(a->pfn_to_virt(pfn));
  }
  a->drain_thread_cache();
  a->validate();
  test::expect_fully_coalesced(*a);
}

INSTANTIATE_TEST_SUITE_P(
    Configs, BuddyModel,
    ::testing::Values(ModelConfig{"tiny_max3_nocache", 1 << 20, 3, 50, false, 256, 64},
                      ModelConfig{"small_max5_tinycache", 4 << 20, 5, 25, true, 8, 2},
                      ModelConfig{"default_64M", 64 << 20, 10, 25, true, 256, 64},
                      ModelConfig{"no_movable_max10", 32 << 20, 10, 0, true, 32, 8}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// zsmalloc/zs_class.cpp — the size-class table (docs/ZSMALLOC.md, "Classes").
//
// Nominal class i (0 .. 254) has slot size 32 + 16 i. Its chain length is the number of pages
// (1 .. chain) whose zspage wastes the smallest share of its bytes, measured in whole percent
// used; on a tie the shorter chain wins. A power-of-two size needs one page. Walking the
// classes from the largest down, a class whose (pages, objects) pair equals the previous
// distinct class's is merged into it: its objects are stored in the larger slots, which waste
// no more zspage memory than its own would. A class of one page and one object is *huge*.
#include <memdesc/zsmalloc.hpp>

#include <algorithm>

namespace memdesc {

namespace {

struct Geometry {
  unsigned pages, objs, used;
};

Geometry geometry(unsigned size, unsigned chain) {
  if ((size & (size - 1)) == 0) return {1, static_cast<unsigned>(kPageSize / size), 100};
  Geometry best{1, 0, 0};
  for (unsigned i = 1; i <= chain; ++i) {
    std::size_t bytes = i * kPageSize;
    unsigned used = static_cast<unsigned>((bytes - bytes % size) * 100 / bytes);
    if (used > best.used) best = {i, static_cast<unsigned>(bytes / size), used};
  }
  return best;
}

}  // namespace

ZsClassTable zs_class_table(unsigned chain) {
  chain = std::clamp(chain, kZsMinChain, kZsMaxChain);
  ZsClassTable t;
  t.chain = chain;
  std::vector<ZsClassGeometry> down;  // largest first
  for (int i = static_cast<int>(kZsSizeClasses) - 1; i >= 0; --i) {
    unsigned size = std::min<unsigned>(kZsMinAllocSize + kZsSizeClassDelta * i, kZsMaxAllocSize);
    Geometry g = geometry(size, chain);
    bool huge = g.pages == 1 && g.objs == 1;
    // The watermark: the largest class that packs more than one object in more than one page.
    if (g.pages != 1 && g.objs != 1 && t.huge_watermark == 0) {
      t.huge_watermark = size;
      t.huge_class_size = size - (kZsHeaderSize - 1);  // callers' bytes + the 8-byte header
    }
    if (!down.empty() && down.back().pages_per_zspage == g.pages && down.back().objs_per_zspage == g.objs) {
      down.back().first_index = static_cast<unsigned>(i);  // merged into the larger class
      continue;
    }
    ZsClassGeometry c;
    c.index = c.first_index = static_cast<unsigned>(i);
    c.size = size;
    c.pages_per_zspage = g.pages;
    c.objs_per_zspage = g.objs;
    c.huge = huge;
    c.used_percent = g.used;
    down.push_back(c);
  }
  t.classes.assign(down.rbegin(), down.rend());
  return t;
}

}  // namespace memdesc

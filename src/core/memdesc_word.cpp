// core/memdesc_word.cpp — names and the printer for memdesc words, and describe()'s report.
#include <cinttypes>
#include <cstdio>
#include <memdesc/word.hpp>

#include "base/base.hpp"

namespace memdesc {

namespace detail {
void bad_describe(MemdescType t, const void* desc, unsigned order, unsigned aux) {
  report_invariant("MEMDESC-PTR", "a %s word cannot hold descriptor %p, order %u, aux %u (16-byte aligned below 2^47, order <= 15, aux < 2^13)",
                   type_name(t), desc, order, aux);
}
}  // namespace detail

const char* misc_subtype_name(MiscSubtype s) {
  switch (s) {
    case MiscSubtype::Reserved: return "reserved";
    case MiscSubtype::Zero: return "zero";
    case MiscSubtype::Unknown: return "unknown";
    case MiscSubtype::Vmalloc: return "vmalloc";
    case MiscSubtype::Guard: return "guard";
    case MiscSubtype::Offline: return "offline";
    case MiscSubtype::KmallocLarge: return "kmalloc_large";
    case MiscSubtype::Exact: return "exact";
    case MiscSubtype::Migrating: return "migrating";
    case MiscSubtype::Brd: return "brd";
    case MiscSubtype::Pages: return "pages";
  }
  return "?";
}

void format_word(MemdescWord w, char* buf, std::size_t n) {
  if (!w.is_valid()) {
    std::snprintf(buf, n, "invalid(0x%016" PRIx64 ")", w.raw());
    return;
  }
  switch (w.type()) {
    case MemdescType::Buddy:
      if (w.buddy_head())
        std::snprintf(buf, n, "Buddy(head, order=%u, %s)", w.buddy_order(), w.buddy_dirty() ? "dirty" : "clean");
      else
        std::snprintf(buf, n, "Buddy(%s)", w.buddy_dirty() ? "dirty" : "clean");
      return;
    case MemdescType::Misc:
      std::snprintf(buf, n, "Misc(%s, order=%u%s)", misc_subtype_name(w.misc_subtype()), w.order(),
                    w.misc_mappable() ? ", mappable" : "");
      return;
    default:
      std::snprintf(buf, n, "%s(desc=%p, order=%u, aux=%u)", type_name(w.type()), w.desc(), w.order(), w.aux());
  }
}

std::string to_string(MemdescWord w) {
  char buf[96];
  format_word(w, buf, sizeof buf);
  return buf;
}

}  // namespace memdesc

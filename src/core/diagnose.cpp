// core/diagnose.cpp — the shared diagnosis of a bad free (core/diagnose.hpp).
#include "core/diagnose.hpp"

#include "base/base.hpp"

namespace memdesc::core {

namespace {
FoundWord found_word(const Memmap& mm, const void* addr) {
  FoundWord f{mm.pfn(addr), mm.word(mm.pfn(addr)), {}};
  format_word(f.word, f.text, sizeof f.text);
  return f;
}
}  // namespace

void report_foreign(const Memmap& mm, const char* op, const void* addr) {
  report_foreign_pointer(op, addr, mm.addr(0), reinterpret_cast<void*>(mm.base() + mm.bytes()));
}

void check_in_arena(const Memmap& mm, const char* op, const void* addr) {
  if (!mm.contains(addr)) report_foreign(mm, op, addr);
}

FoundWord diagnose_free(const Memmap& mm, const char* op, const void* addr) {
  check_in_arena(mm, op, addr);
  FoundWord f = found_word(mm, addr);
  if (f.word.is(MemdescType::Buddy)) report_double_free(op, addr, f.pfn, f.text);
  return f;
}

void report_bad_word(const Memmap& mm, const char* op, const void* addr, const char* expected, bool buddy_is_double_free) {
  FoundWord f = buddy_is_double_free ? diagnose_free(mm, op, addr) : (check_in_arena(mm, op, addr), found_word(mm, addr));
  report_wrong_type(op, addr, expected, f.text);
}

}  // namespace memdesc::core

// core/diagnose.cpp — the shared diagnosis of a bad free (core/diagnose.hpp).
#include "core/diagnose.hpp"

#include "base/base.hpp"

namespace memdesc::core {

void report_foreign(const Memmap& mm, const char* op, const void* addr) {
  report_foreign_pointer(op, addr, mm.addr(0), reinterpret_cast<void*>(mm.base() + mm.bytes()));
}

void check_in_arena(const Memmap& mm, const char* op, const void* addr) {
  if (!mm.contains(addr)) report_foreign(mm, op, addr);
}

FoundWord diagnose_free(const Memmap& mm, const char* op, const void* addr) {
  check_in_arena(mm, op, addr);
  FoundWord f{mm.pfn(addr), mm.word(mm.pfn(addr)), {}};
  format_word(f.word, f.text, sizeof f.text);
  if (f.word.is(MemdescType::Buddy)) report_double_free(op, addr, f.pfn, f.text);
  return f;
}

void report_bad_word(const Memmap& mm, const char* op, const void* addr, const char* expected, bool buddy_is_double_free) {
  check_in_arena(mm, op, addr);
  if (!buddy_is_double_free) {
    char text[96];
    format_word(mm.word(mm.pfn(addr)), text, sizeof text);
    report_wrong_type(op, addr, expected, text);
  }
  FoundWord f = diagnose_free(mm, op, addr);
  report_wrong_type(op, addr, expected, f.text);
}

}  // namespace memdesc::core

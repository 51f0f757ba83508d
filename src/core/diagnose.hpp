// core/diagnose.hpp — why a free (or a lookup) of an address is bad: the one diagnosis every
// allocator's free path calls once its fast check has failed.
//
// In order: an address outside the arena is a foreign pointer; a page whose word is Buddy is
// free already, so freeing it is a double free; anything else is the caller's to judge (the
// wrong type, the wrong cache, not the start of a block), with the word found at hand and
// formatted for the report.
#pragma once
#include <memdesc/word.hpp>

#include <cstdint>

#include "core/memmap.hpp"

namespace memdesc::core {

struct FoundWord {
  std::uint64_t pfn;
  MemdescWord word;
  char text[96];  // the word as the reports print it
};

// Fatal report when addr is outside the arena (a foreign pointer).
void check_in_arena(const Memmap& mm, const char* op, const void* addr);
[[noreturn]] void report_foreign(const Memmap& mm, const char* op, const void* addr);
// The word under addr, once a foreign pointer and a double free have been reported (fatal).
FoundWord diagnose_free(const Memmap& mm, const char* op, const void* addr);
// The whole diagnosis for a call that accepts only `expected` (described for the report): a
// foreign pointer, a double free (when `buddy_is_double_free`), else the wrong type.
[[noreturn]] void report_bad_word(const Memmap& mm, const char* op, const void* addr, const char* expected,
                                  bool buddy_is_double_free = true);

}  // namespace memdesc::core

// fuzz/fuzz_word.cpp — the memdesc word decoder: any 64-bit value decodes, formats and
// validates without undefined behaviour; a valid described word round-trips through describe().
#include <string>

#include "fuzz_support.hpp"

using namespace memdesc;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  while (in.remaining_bytes() >= 8) {
    MemdescWord w = MemdescWord::from_raw(in.ConsumeIntegral<std::uint64_t>());
    char buf[96];
    format_word(w, buf, sizeof buf);
    FUZZ_CHECK(std::strlen(buf) < sizeof buf);
    std::string s = to_string(w);
    FUZZ_CHECK(s == buf);
    (void)type_name(w.type());
    if (!w.is_valid()) continue;
    if (w.has_pointer()) {
      MemdescWord again = MemdescWord::describe(w.type(), w.desc(), w.order(), w.aux());
      FUZZ_CHECK(again == w);
    } else if (w.is(MemdescType::Misc)) {
      FUZZ_CHECK(misc_subtype_is_assigned(static_cast<unsigned>(w.misc_subtype())));
      FUZZ_CHECK(MemdescWord::misc(w.misc_subtype(), w.order(), w.misc_mappable()) == w);
    }
  }
  return 0;
}

// slab/slab_desc.cpp — the per-process secret of the freelist-link codec (slab_desc.hpp).
#include "slab/slab_desc.hpp"

#include <sys/random.h>

#include <cstdint>
#include <mutex>

namespace memdesc::slab {

void init_link_secret() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::uint64_t s[2] = {};
    if (getrandom(s, sizeof s, 0) != sizeof s) {
      s[0] = reinterpret_cast<std::uintptr_t>(&s) * 0x9E3779B97F4A7C15ull;
      s[1] = (s[0] ^ reinterpret_cast<std::uintptr_t>(&init_link_secret)) * 0xBF58476D1CE4E5B9ull;
    }
    g_link_secret = s[0] | 1;
    g_mark_secret = s[1] | 1;
  });
}

}  // namespace memdesc::slab

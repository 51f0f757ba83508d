// base/version.cpp — the library's version string (memdesc/version.hpp).
#include <memdesc/version.hpp>

#define MEMDESC_STR2(x) #x
#define MEMDESC_STR(x) MEMDESC_STR2(x)

namespace memdesc {

const char* version() {
  return MEMDESC_STR(MEMDESC_VERSION_MAJOR) "." MEMDESC_STR(MEMDESC_VERSION_MINOR) "." MEMDESC_STR(MEMDESC_VERSION_PATCH);
}

}  // namespace memdesc

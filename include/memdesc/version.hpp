// memdesc/version.hpp — the library's version, the one place it is written. Layer: base
// (public face). CMakeLists.txt reads it for project(), the package config and memdesc.pc.
#pragma once

#define MEMDESC_VERSION_MAJOR 0
#define MEMDESC_VERSION_MINOR 2
#define MEMDESC_VERSION_PATCH 0

namespace memdesc {

inline constexpr unsigned kVersionMajor = MEMDESC_VERSION_MAJOR;
inline constexpr unsigned kVersionMinor = MEMDESC_VERSION_MINOR;
inline constexpr unsigned kVersionPatch = MEMDESC_VERSION_PATCH;

// "0.2.0": the version of the library this program runs on (may differ from the headers'
// when linked against a shared library of another release).
const char* version();

}  // namespace memdesc

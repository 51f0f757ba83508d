// base/compiler.hpp — compiler attributes that mark fast and slow paths.
//
// MEMDESC_FAST_PATH: forced inline; a function so marked states its cost in a comment and has a
// micro-benchmark in bench/. MEMDESC_SLOW_PATH: never inlined, kept out of the hot code; such
// functions carry a `_slow` suffix.
#pragma once

#define MEMDESC_FAST_PATH inline __attribute__((always_inline))
#define MEMDESC_SLOW_PATH __attribute__((noinline, cold))
#define MEMDESC_LIKELY(x) __builtin_expect(!!(x), 1)
#define MEMDESC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#if defined(MEMDESC_CHECKED)
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif

// Hardened release builds (preset "hardened"): a free object carries a keyed mark, so a double
// free anywhere — not only on top of the thread's magazine — is a report (SLAB-FREE-MARK).
#if defined(MEMDESC_HARDENED)
inline constexpr bool kHardened = true;
#else
inline constexpr bool kHardened = false;
#endif

// base/thread_annotations.hpp — Clang's thread-safety analysis, spelled for memdesc.
//
// Lock types are capabilities; a field a lock protects says GUARDED_BY(that lock); a function
// that must be called with a lock held (the `_locked` helpers) says REQUIRES(it). The clang
// presets build with -Wthread-safety and MEMDESC_WERROR (CMakeLists.txt), so an access the
// analysis cannot prove protected fails the build. GCC ignores the annotations.
//
// What the analysis cannot see is said in a comment where it happens: fields of one object
// guarded by another object's lock (a slab descriptor's fields by its cache's lock), and
// accesses with no lock on purpose (construction before publication, teardown after every
// user is gone): those go through NO_THREAD_SAFETY_ANALYSIS functions that say why.
#pragma once

#if defined(__clang__)
#define MEMDESC_TSA(x) __attribute__((x))
#else
#define MEMDESC_TSA(x)
#endif

#define CAPABILITY(x) MEMDESC_TSA(capability(x))
#define SCOPED_CAPABILITY MEMDESC_TSA(scoped_lockable)
#define GUARDED_BY(x) MEMDESC_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) MEMDESC_TSA(pt_guarded_by(x))
#define REQUIRES(...) MEMDESC_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) MEMDESC_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) MEMDESC_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) MEMDESC_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) MEMDESC_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) MEMDESC_TSA(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) MEMDESC_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) MEMDESC_TSA(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) MEMDESC_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS MEMDESC_TSA(no_thread_safety_analysis)

// bench/peers.cpp — see peers.hpp.
#include "peers.hpp"

#include <dlfcn.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace memdesc::bench {
namespace {

// mimalloc's aligned entry point takes (size, alignment); adapt it to aligned_alloc's order.
void* (*g_mi_malloc_aligned)(std::size_t, std::size_t) = nullptr;
void* mi_aligned_adapter(std::size_t align, std::size_t size) { return g_mi_malloc_aligned(size, align); }

void* glibc_aligned_alloc(std::size_t align, std::size_t size) { return ::aligned_alloc(align, size); }
void* glibc_malloc(std::size_t size) { return ::malloc(size); }
void glibc_free(void* p) { ::free(p); }

template <class F>
bool sym(void* h, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(h, name));
  return out != nullptr;
}

}  // namespace

void ensure_static_tls_for_peers(char** argv) {
  static const char kTunable[] = "glibc.rtld.optional_static_tls=1048576";
  const char* cur = std::getenv("GLIBC_TUNABLES");
  if (cur && std::strstr(cur, "glibc.rtld.optional_static_tls")) return;
  std::string v = cur && *cur ? std::string(cur) + ":" + kTunable : std::string(kTunable);
  ::setenv("GLIBC_TUNABLES", v.c_str(), 1);
  ::execv("/proc/self/exe", argv);  // on failure, go on: jemalloc will be reported missing
}

Peers load_peers() {
  Peers ps;
  ps.loaded.push_back({"glibc", glibc_aligned_alloc, glibc_malloc, glibc_free});
  struct Spec {
    const char* name;
    const char* lib;
    const char* aligned;
    const char* malloc;
    const char* free;
  };
  const Spec specs[] = {
      {"jemalloc", "libjemalloc.so.2", "aligned_alloc", "malloc", "free"},
      {"tcmalloc", "libtcmalloc_minimal.so.4", "tc_memalign", "tc_malloc", "tc_free"},
      {"mimalloc", "libmimalloc.so.2", "mi_malloc_aligned", "mi_malloc", "mi_free"},
  };
  for (const Spec& s : specs) {
    void* h = ::dlopen(s.lib, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) {
      const char* e = ::dlerror();
      ps.missing.push_back(std::string(s.name) + ": " + (e ? e : "dlopen failed"));
      continue;
    }
    Peer p{s.name};
    bool ok = sym(h, s.malloc, p.malloc) && sym(h, s.free, p.free);
    if (std::string(s.name) == "mimalloc") {
      ok = ok && sym(h, s.aligned, g_mi_malloc_aligned);
      p.aligned_alloc = mi_aligned_adapter;
    } else {
      ok = ok && sym(h, s.aligned, p.aligned_alloc);
    }
    if (!ok) {
      ps.missing.push_back(std::string(s.name) + ": a symbol is missing in " + s.lib);
      continue;
    }
    ps.loaded.push_back(p);  // the handle stays open for the life of the process
  }
  return ps;
}

}  // namespace memdesc::bench

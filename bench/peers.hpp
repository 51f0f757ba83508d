// bench/peers.hpp — the allocators memdesc is measured against, loaded into this process.
//
// glibc is the process's own malloc. jemalloc, tcmalloc (minimal) and mimalloc are Debian
// shared libraries opened with dlopen(RTLD_LOCAL | RTLD_DEEPBIND): their symbols stay private to
// them, so each keeps its own heap, and the benchmark calls each through function pointers.
// A peer that is not installed is reported as missing, never silently dropped.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace memdesc::bench {

struct Peer {
  std::string name;
  void* (*aligned_alloc)(std::size_t align, std::size_t size) = nullptr;
  void* (*malloc)(std::size_t size) = nullptr;
  void (*free)(void*) = nullptr;
};

struct Peers {
  std::vector<Peer> loaded;
  std::vector<std::string> missing;  // "name: reason"
};

Peers load_peers();

// jemalloc uses initial-exec TLS, which a dlopen'ed library may take only from glibc's small
// static TLS surplus. Call first thing in main(): if the surplus was not raised yet, re-executes
// the program with GLIBC_TUNABLES=glibc.rtld.optional_static_tls set (returns if it cannot).
void ensure_static_tls_for_peers(char** argv);

}  // namespace memdesc::bench

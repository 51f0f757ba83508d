// A program outside the tree, built against an installed memdesc (scripts/test-install): it uses
// every public header through the umbrella, and checks what it gets back.
#include <memdesc/memdesc.hpp>

#include <cstdio>
#include <cstring>

int main() {
  auto a = memdesc::Arena::create({.size = 64ull << 20});
  if (!a.ok()) {
    std::fprintf(stderr, "consumer: %s\n", memdesc::describe(a.error()).c_str());
    return 1;
  }
  memdesc::Arena& arena = *a.value();
  void* pages = arena.alloc_pages(2, memdesc::GFP_ZERO);
  char* obj = static_cast<char*>(arena.kmalloc(100));
  if (!pages || !obj) return 1;
  std::memset(obj, 7, 100);
  bool ok = arena.ksize(obj) == 128 && static_cast<unsigned char*>(pages)[4095] == 0;
  arena.kfree(obj);
  arena.free_pages(pages);

  memdesc::ZramConfig zc{};  // the umbrella reaches zram.hpp
  (void)zc;
  std::printf("consumer: memdesc %s, kmalloc(100) -> %s, %s\n", memdesc::version(), ok ? "128-byte class" : "wrong class",
              ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

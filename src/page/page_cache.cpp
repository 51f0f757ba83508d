// page/page_cache.cpp — the registry of per-thread page caches. See page_cache.hpp.
#include "page/page_cache.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "page/page_alloc.hpp"

namespace memdesc::page {

// Takes c off its allocator's list of caches (a friend of PageAllocator, declared here only).
void unlink_thread_cache_locked(ThreadPageCache* c) REQUIRES(g_cache_registry);

namespace {

// Where the calling thread's ThreadCacheSet is in its life. Trivially destructible, so it can
// be read at any time, including from destructors that run after the set is gone (an arena in
// a static variable is destroyed after the main thread's thread_local objects).
enum class SetState : unsigned char { unborn, alive, dead };
constinit thread_local SetState tls_set_state = SetState::unborn;

// The calling thread's caches, one per arena it has allocated from. Its destructor runs at
// thread exit and drains every cache whose arena still lives.
struct ThreadCacheSet {
  std::vector<ThreadPageCache*> caches;

  ThreadCacheSet() { tls_set_state = SetState::alive; }
  ~ThreadCacheSet() {
    tls_set_state = SetState::dead;
    tls_page_cache = {};
    for (ThreadPageCache* c : caches) {
      {
        LockGuard g(g_cache_registry);
        if (c->owner) {
          // Higher layers first: their flush may free pages into the buddy (this thread's
          // cache is gone from the TLS slot, so those frees bypass it).
          for (CacheExt& e : c->ext)
            if (e.ctx) {
              e.ops->thread_exit(e.ctx);
              e = {};
            }
          c->owner->drain_cache(c);
          c->owner->memmap().metadata().caches.fetch_sub(c->bytes, std::memory_order_relaxed);
          unlink_thread_cache_locked(c);
        }
      }
      free_thread_cache(c);
    }
  }

  // Frees caches whose arena has gone (orphans). Registry lock held by the caller.
  void drop_orphans_locked() REQUIRES(g_cache_registry) {
    std::size_t kept = 0;
    for (ThreadPageCache* c : caches) {
      if (c->owner) caches[kept++] = c;
      else free_thread_cache(c);
    }
    caches.resize(kept);
  }
};
thread_local ThreadCacheSet tls_set;

}  // namespace

void free_thread_cache(ThreadPageCache* c) {
  for (CacheExt& e : c->ext)
    if (e.ctx) e.ops->release(e.ctx);
  for (auto& zone_lists : c->lists)
    for (PcpList& l : zone_lists) std::free(l.pfns);
  delete c;
}

ThreadPageCache* find_thread_cache(const PageAllocator* pa) {
  if (tls_set_state != SetState::alive) return nullptr;
  std::uint64_t id = pa->memmap().id();
  for (ThreadPageCache* c : tls_set.caches)
    if (c->owner_id == id) return c;
  return nullptr;
}

ThreadPageCache* attach_thread_cache(PageAllocator* pa) {
  // After the set is gone (thread-exit destructors may still allocate): no cache.
  if (tls_set_state == SetState::dead) return nullptr;
  // Every thread that uses an arena is registered with RCU here, where it holds no lock:
  // registration may wait for a fork in progress (rcu/fork.hpp), and the slab layer's
  // rcu::call runs under a cache lock. (Registered before its cache set exists, the thread
  // also unregisters after the set's destructor has flushed it.)
  rcu::ensure_registered();
  ThreadPageCache* c = find_thread_cache(pa);
  if (!c) {
    c = pa->new_thread_cache();
    if (!c) return nullptr;
    {
      LockGuard g(g_cache_registry);
      tls_set.drop_orphans_locked();
      c->owner = pa;
      c->reg_next = pa->caches_head;
      if (pa->caches_head) pa->caches_head->reg_prev = c;
      pa->caches_head = c;
    }
    tls_set.caches.push_back(c);
  }
  tls_page_cache = {c->owner_id, c};
  return c;
}

unsigned register_cache_ext(PageAllocator* pa, const CacheExtOps* ops) {
  LockGuard g(g_cache_registry);
  for (unsigned slot = 0; slot < kMaxCacheExt; ++slot)
    if (!pa->ext_ops[slot]) {
      pa->ext_ops[slot] = ops;
      return slot;
    }
  report_bad_argument("register_cache_ext", "every per-thread extension slot is taken (kMaxCacheExt)");
}

bool set_cache_ext(ThreadPageCache* c, unsigned slot, void* ctx) {
  LockGuard g(g_cache_registry);
  const CacheExtOps* ops = c->owner ? c->owner->ext_ops[slot] : nullptr;
  if (!ops) return false;
  c->ext[slot] = {ctx, ops};
  return true;
}

void detach_cache_ext(PageAllocator* pa, unsigned slot) {
  LockGuard g(g_cache_registry);
  for (ThreadPageCache* c = pa->caches_head; c; c = c->reg_next) {
    CacheExt& e = c->ext[slot];
    if (e.ctx) e.ops->release(e.ctx);
    e = {};
  }
  pa->ext_ops[slot] = nullptr;
}

void detach_all_thread_caches(PageAllocator* pa) {
  LockGuard g(g_cache_registry);
  for (ThreadPageCache* c = pa->caches_head; c;) {
    ThreadPageCache* next = c->reg_next;
    c->owner = nullptr;  // orphan: its thread frees it
    c->reg_prev = c->reg_next = nullptr;
    c = next;
  }
  pa->caches_head = nullptr;
  if (tls_page_cache.id == pa->memmap().id()) tls_page_cache = {};
  if (tls_set_state == SetState::alive) tls_set.drop_orphans_locked();
}

void enable_registry_fork_hook() {
  static const rcu::ForkOps kOps{
      [](void*, LockRank r) NO_THREAD_SAFETY_ANALYSIS {
        if (r == LockRank::CacheRegistry) g_cache_registry.fork_acquire();
      },
      [](void*, LockRank r) NO_THREAD_SAFETY_ANALYSIS {
        if (r == LockRank::CacheRegistry) g_cache_registry.fork_release();
      },
      nullptr};
  static rcu::ForkHook* hook = [] {
    auto* h = new rcu::ForkHook();  // for the life of the process, like the lock
    h->enable(nullptr, &kOps);
    return h;
  }();
  (void)hook;
}

void reclaim_dead_thread_caches(PageAllocator* pa) {
  // Only the forking thread survives: its caches are the ones in its set. The others are taken
  // off the registry first and reclaimed without the registry lock (their flushes free
  // descriptors through this thread's caches, whose slow paths may take it).
  std::vector<ThreadPageCache*> dead;
  {
    LockGuard g(g_cache_registry);
    for (ThreadPageCache* c = pa->caches_head; c;) {
      ThreadPageCache* next = c->reg_next;
      bool mine = tls_set_state == SetState::alive &&
                  std::find(tls_set.caches.begin(), tls_set.caches.end(), c) != tls_set.caches.end();
      if (!mine) {
        unlink_thread_cache_locked(c);
        c->owner = nullptr;
        dead.push_back(c);
      }
      c = next;
    }
  }
  for (ThreadPageCache* c : dead) {
    for (CacheExt& e : c->ext)
      if (e.ctx) {
        e.ops->fork_orphan(e.ctx);
        e = {};
      }
    pa->reclaim_orphan_cache(c);
    pa->memmap().metadata().caches.fetch_sub(c->bytes, std::memory_order_relaxed);
    free_thread_cache(c);
  }
}

void unlink_thread_cache_locked(ThreadPageCache* c) {
  PageAllocator* pa = c->owner;
  if (c->reg_prev) c->reg_prev->reg_next = c->reg_next;
  else pa->caches_head = c->reg_next;
  if (c->reg_next) c->reg_next->reg_prev = c->reg_prev;
  c->reg_prev = c->reg_next = nullptr;
}

}  // namespace memdesc::page

// rcu/fork.cpp — the fork handlers and the registry of objects with locks (rcu/fork.hpp).
#include "rcu/fork.hpp"

#include <pthread.h>
#include <urcu/urcu-memb.h>

#include <mutex>

namespace memdesc::rcu {

// The registered objects: an intrusive list under a plain mutex, held from prepare to the end
// of the child's or parent's handler (so the list cannot change during a fork).
struct ForkRegistry {
  static std::mutex& mu() {
    static std::mutex* m = new std::mutex;  // never destroyed: arenas in static storage unregister late
    return *m;
  }
  static inline ForkHook* head = nullptr;

  static void prepare() {
    pthread_rwlock_wrlock(&urcu_calls());                                // 1
    urcu_memb_call_rcu_before_fork();                                    // 2
    detail::g_read_gate_closed.store(true, std::memory_order_seq_cst);  // 3
    urcu_memb_synchronize_rcu();
    mu().lock();                                                         // 4
    for (LockRank r : kAllLockRanks)
      for (ForkHook* h = head; h; h = h->next_) h->ops_->acquire(h->self_, r);
  }
  static void release_all() {
    for (auto it = std::rbegin(kAllLockRanks); it != std::rend(kAllLockRanks); ++it)
      for (ForkHook* h = head; h; h = h->next_) h->ops_->release(h->self_, *it);
    detail::g_read_gate_closed.store(false, std::memory_order_release);
  }
  static void parent() {
    release_all();
    mu().unlock();
    urcu_memb_call_rcu_after_fork_parent();
    pthread_rwlock_unlock(&urcu_calls());
  }
  static void child() {
    g_fork_generation.fetch_add(1, std::memory_order_relaxed);
    g_fork_child_releasing = true;
    release_all();
    g_fork_child_releasing = false;
    detail::forget_dead_readers();
    urcu_memb_call_rcu_after_fork_child();  // a callback thread for the child
    // A fresh lock, not an unlock: the parent's blocked readers left their count in it.
    urcu_calls() = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    for (ForkHook* h = head; h; h = h->next_)
      if (h->ops_->child) h->ops_->child(h->self_);
    mu().unlock();
  }
  // Writer-preferring, so that a stream of grace periods cannot starve a fork.
  static pthread_rwlock_t& urcu_calls() {
    static pthread_rwlock_t l = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    return l;
  }
};

namespace detail {

UrcuCallGuard::UrcuCallGuard() { pthread_rwlock_rdlock(&ForkRegistry::urcu_calls()); }
UrcuCallGuard::~UrcuCallGuard() { pthread_rwlock_unlock(&ForkRegistry::urcu_calls()); }

void wait_read_gate() {
  unsigned spins = 0;
  while (g_read_gate_closed.load(std::memory_order_acquire)) spin_backoff(spins);
}

void install_fork_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    (void)ForkRegistry::mu();
    (void)ForkRegistry::urcu_calls();
    (void)urcu_memb_get_default_call_rcu_data();
    pthread_atfork(&ForkRegistry::prepare, &ForkRegistry::parent, &ForkRegistry::child);
  });
}

}  // namespace detail

void ForkHook::enable(void* self, const ForkOps* ops) {
  detail::install_fork_handlers();
  std::lock_guard<std::mutex> g(ForkRegistry::mu());
  self_ = self;
  ops_ = ops;
  prev_ = nullptr;
  next_ = ForkRegistry::head;
  if (next_) next_->prev_ = this;
  ForkRegistry::head = this;
  enabled_ = true;
}

void ForkHook::disable() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> g(ForkRegistry::mu());
  if (prev_) prev_->next_ = next_;
  else ForkRegistry::head = next_;
  if (next_) next_->prev_ = prev_;
  next_ = prev_ = nullptr;
  enabled_ = false;
}

}  // namespace memdesc::rcu

// rcu/rcu.cpp — see rcu.hpp.
#include "rcu/rcu.hpp"

#include <cstddef>
#include <urcu/urcu-memb.h>

#include "base/base.hpp"
#include "rcu/fork.hpp"

#if defined(MEMDESC_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define MEMDESC_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define MEMDESC_TSAN_RELEASE(p) __tsan_release(p)
#else
#define MEMDESC_TSAN_ACQUIRE(p) ((void)(p))
#define MEMDESC_TSAN_RELEASE(p) ((void)(p))
#endif

namespace memdesc::rcu {
namespace {

static_assert(sizeof(Head::urcu_storage) == sizeof(struct rcu_head), "Head must hold a liburcu rcu_head");
static_assert(offsetof(Head, urcu_storage) == 0);

// TSan cannot see the membarrier-based grace period. Every reader unlock releases this token
// and every grace-period wait acquires it, which is exactly the ordering RCU guarantees.
char g_grace_period_token;

struct Registration {
  bool registered = false;  // by us: we unregister at thread exit
  bool urcu_worker = false;  // liburcu's callback thread, registered by liburcu itself
  int depth = 0;
  ~Registration() {
    if (!registered) return;
    detail::UrcuCallGuard g;  // liburcu's registry lock: not across a fork (rcu/fork.hpp)
    urcu_memb_unregister_thread();
  }
  void ensure() {
    if (!registered && !urcu_worker) {
      detail::UrcuCallGuard g;
      urcu_memb_register_thread();
      registered = true;
    }
  }
};
thread_local Registration tls_reg;

void trampoline(struct rcu_head* rh) {
  tls_reg.urcu_worker = true;  // callbacks may read_lock or call() again: no second registration
  Head* h = reinterpret_cast<Head*>(rh);
  MEMDESC_TSAN_ACQUIRE(&g_grace_period_token);
  MEMDESC_TSAN_ACQUIRE(h);
  h->fn(h);
}

}  // namespace

void read_lock() {
  tls_reg.ensure();
  if (tls_reg.depth++ != 0) return urcu_memb_read_lock();  // nested: the outer section passed the gate
  for (;;) {
    urcu_memb_read_lock();
    // The fork gate (rcu/fork.hpp): a fork waits for a grace period after closing it, so a
    // section that began after that wait started sees it closed. No lock is held here.
    if (MEMDESC_LIKELY(!detail::g_read_gate_closed.load(std::memory_order_acquire))) return;
    urcu_memb_read_unlock();
    detail::wait_read_gate();
  }
}

void read_unlock() {
  if (tls_reg.depth <= 0) report_bad_argument("rcu::read_unlock", "not inside a read-side section");
  MEMDESC_TSAN_RELEASE(&g_grace_period_token);
  urcu_memb_read_unlock();
  --tls_reg.depth;
}

bool in_read_section() { return tls_reg.depth > 0; }

void synchronize() {
  if (in_read_section()) report_bad_argument("rcu::synchronize", "called inside a read-side section (deadlock)");
  detail::UrcuCallGuard g;
  urcu_memb_synchronize_rcu();
  MEMDESC_TSAN_ACQUIRE(&g_grace_period_token);
}

void call(Head* h, void (*fn)(Head*)) {
  tls_reg.ensure();
  h->fn = fn;
  MEMDESC_TSAN_RELEASE(h);
  urcu_memb_call_rcu(reinterpret_cast<struct rcu_head*>(h), trampoline);
}

void barrier() {
  if (in_read_section()) report_bad_argument("rcu::barrier", "called inside a read-side section (deadlock)");
  detail::UrcuCallGuard g;
  urcu_memb_barrier();
}

}  // namespace memdesc::rcu

// rcu/rcu.cpp — see rcu.hpp.
#include "rcu/rcu.hpp"

#include <cstddef>
#include <mutex>
#include <urcu/urcu-memb.h>
// liburcu's per-thread reader state (struct urcu_reader, the urcu_memb_reader TLS variable):
// read only to forget, in a fork child, the readers of threads that did not survive.
#include <urcu/static/urcu-memb.h>

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

struct Registration;
// Every thread we registered, so that a fork child can find those that did not survive. Changed
// under the liburcu guard (shared) and this mutex; no fork runs meanwhile.
std::mutex g_regs_mu;
Registration* g_regs = nullptr;

struct Registration {
  bool registered = false;  // by us: we unregister at thread exit
  bool urcu_worker = false;  // liburcu's callback thread, registered by liburcu itself
  int depth = 0;
  struct urcu_reader* reader = nullptr;  // liburcu's state of this thread
  Registration* next = nullptr;
  Registration* prev = nullptr;
  ~Registration() {
    if (!registered) return;
    detail::UrcuCallGuard g;  // liburcu's registry lock: not across a fork (rcu/fork.hpp)
    urcu_memb_unregister_thread();
    std::lock_guard<std::mutex> l(g_regs_mu);
    if (prev) prev->next = next;
    else g_regs = next;
    if (next) next->prev = prev;
  }
  void ensure() {
    if (!registered && !urcu_worker) {
      detail::UrcuCallGuard g;
      urcu_memb_register_thread();
      registered = true;
      reader = &URCU_TLS(urcu_memb_reader);
      std::lock_guard<std::mutex> l(g_regs_mu);
      next = g_regs;
      if (next) next->prev = this;
      g_regs = this;
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

void ensure_registered() { tls_reg.ensure(); }

namespace detail {
void forget_dead_readers() {
  // The threads that did not survive the fork are still in liburcu's registry (the memb flavour
  // has no fork support), with their reader state in their thread-local storage, memory the
  // child reuses for the stacks of the threads it makes next (liburcu's own callback thread
  // first). So each is taken out of the registry before any thread is made — no other thread
  // is inside liburcu's registry at a fork (the guard) — and out of ours. A reader the fork
  // stopped inside a section (between liburcu's read_lock and the gate test) goes with it.
  std::lock_guard<std::mutex> l(g_regs_mu);
  for (Registration* r = g_regs; r; r = r->next)
    if (r != &tls_reg && r->reader) cds_list_del(&r->reader->node);
  g_regs = nullptr;
  tls_reg.next = tls_reg.prev = nullptr;
  if (tls_reg.registered) g_regs = &tls_reg;
}
}  // namespace detail

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

// rcu/fork.hpp — fork() safety: every lock of the process held across the fork, liburcu quiesced
// around it, and a child that can go on using every arena.
//
// A process that forks while other threads allocate would hand its child locks held by threads
// that do not exist there, and liburcu's callback thread would be missing. So memdesc registers
// fork handlers (pthread_atfork, once, when the first object with locks registers):
//   prepare  1. wait for every call into liburcu that takes its internal locks (grace periods,
//               barriers, thread registration) to finish, and keep new ones out;
//            2. pause liburcu's callback threads (call_rcu_before_fork);
//            3. close the read-side gate and wait for a grace period: every thread is then
//               outside every read-side section, and new readers wait at the gate (they hold
//               no memdesc lock there: no read section is entered with a lock held);
//            4. take every lock of every registered object, rank by rank in lock order
//               (base/lock_rank.hpp kAllLockRanks).
//   parent   release in reverse; reopen the gate; resume the callback threads.
//   child    release in reverse; reopen the gate; a new callback thread (call_rcu_after_fork_child
//            moves the callbacks still queued onto it); then each object's fork_child hook:
//            the caches of the threads that did not survive the fork are reclaimed (page layer).
// docs/LOCKING.md ("fork") says what a child may do.
#pragma once
#include <atomic>

#include "base/base.hpp"

namespace memdesc::rcu {

namespace detail {
// rcu.cpp's side of the protocol. Calls into liburcu that take its internal locks hold this
// guard (shared); prepare takes it exclusively (step 1).
class UrcuCallGuard {
 public:
  UrcuCallGuard();
  ~UrcuCallGuard();
  UrcuCallGuard(const UrcuCallGuard&) = delete;
  UrcuCallGuard& operator=(const UrcuCallGuard&) = delete;
};
// The read-side gate (step 3): an outermost read_lock that finds it closed leaves its section
// and waits for the fork to end.
inline std::atomic<bool> g_read_gate_closed{false};
void wait_read_gate();
// Installs the fork handlers and makes liburcu's callback thread now, once per process (a
// call_rcu that made it under a memdesc lock while prepare holds liburcu's lock would deadlock).
void install_fork_handlers();
// In the child: the reader state of every thread that did not survive the fork is cleared.
void forget_dead_readers();
}  // namespace detail

// How many fork()s this process descends through (0 in the original process; each child
// handler adds one). An object made before a fork and used in the child sees a larger value.
inline std::atomic<std::uint64_t> g_fork_generation{0};
inline std::uint64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

// One object's part in fork(): acquire/release every lock of rank `r` it owns (with the lock
// types' fork_acquire/fork_release), and what the child does once all locks are free again.
struct ForkOps {
  void (*acquire)(void* self, LockRank r);
  void (*release)(void* self, LockRank r);
  void (*child)(void* self);  // may be null
};

// Registration of one object, embedded in it. enable() after its locks exist; the destructor
// (or disable()) before they go. Neither may be called with a memdesc lock held.
class ForkHook {
 public:
  ForkHook() = default;
  ForkHook(const ForkHook&) = delete;
  ForkHook& operator=(const ForkHook&) = delete;
  ~ForkHook() { disable(); }
  void enable(void* self, const ForkOps* ops);
  void disable();

 private:
  friend struct ForkRegistry;
  void* self_ = nullptr;
  const ForkOps* ops_ = nullptr;
  ForkHook* next_ = nullptr;
  ForkHook* prev_ = nullptr;
  bool enabled_ = false;
};

}  // namespace memdesc::rcu

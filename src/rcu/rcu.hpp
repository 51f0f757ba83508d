// rcu/rcu.hpp — read-copy-update for memdesc, a thin layer over liburcu's membarrier flavour.
//
// Readers bracket lockless accesses with ReadGuard (nestable, cheap: no atomic RMW, no fence on
// the reader side). Updaters unpublish an object, then either wait (synchronize) or hand it to
// call() whose callback runs after every reader that could have seen it has left [RCU-GP].
// barrier() waits until every call() queued so far has run — tests use it to make deferred
// frees deterministic. Threads register with liburcu on their first read-side section or call()
// and unregister when they exit; nothing else is asked of the caller.
// Under TSan the grace-period edges are annotated so deferred frees are not reported as races.
#pragma once
#include "rcu/fork.hpp"  // IWYU pragma: export

namespace memdesc::rcu {

void read_lock();
void read_unlock();
bool in_read_section();  // the calling thread is inside a read-side section

class ReadGuard {
 public:
  ReadGuard() { read_lock(); }
  ~ReadGuard() { read_unlock(); }
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

// Embed in an object to defer work on it. Layout-compatible storage for liburcu's rcu_head
// plus the callback (checked in rcu.cpp).
struct Head {
  void* urcu_storage[2];
  void (*fn)(Head*);
};

// Registers the calling thread with liburcu now, if it is not yet. Call with no lock held before
// a section that may call() or read_lock() under a lock: registration may wait for a fork.
void ensure_registered();
void synchronize();                  // wait for a grace period; not from a read-side section
void call(Head* h, void (*fn)(Head*));  // run fn(h) after a grace period, on liburcu's worker
void barrier();                      // wait for all queued callbacks; not from a read-side section

}  // namespace memdesc::rcu

// base/lock_rank.cpp — lock-order witness (checked builds) and the spin lock's slow path.
#include "base/lock_rank.hpp"

#include <sched.h>

#include "base/report.hpp"

namespace memdesc {

const char* lock_rank_name(LockRank r) {
  switch (r) {
    case LockRank::ZramEntry: return "ZramEntry";
    case LockRank::CacheRegistry: return "CacheRegistry";
    case LockRank::SlabRegistry: return "SlabRegistry";
    case LockRank::ZsPool: return "ZsPool";
    case LockRank::ZsClass: return "ZsClass";
    case LockRank::SlabCache: return "SlabCache";
    case LockRank::Zone: return "Zone";
    case LockRank::SlabLive: return "SlabLive";
    case LockRank::FragLive: return "FragLive";
  }
  return "?";
}

namespace lock_witness {
namespace {
constexpr int kMaxHeld = 16;
thread_local LockRank held[kMaxHeld];
thread_local int nheld = 0;
}  // namespace

void acquired(LockRank r) {
  if (nheld > 0 && static_cast<int>(held[nheld - 1]) >= static_cast<int>(r))
    report_lock_order(lock_rank_name(r), lock_rank_name(held[nheld - 1]));
  if (nheld == kMaxHeld) report_lock_order(lock_rank_name(r), "too many locks");
  held[nheld++] = r;
}

void released(LockRank r) {
  // Locks are released in LIFO order everywhere in memdesc; anything else is a bug.
  if (nheld == 0 || held[nheld - 1] != r) report_lock_order("(release out of order)", lock_rank_name(r));
  --nheld;
}
}  // namespace lock_witness

void spin_backoff(unsigned& spins) {
  if (spins < 64) {
    __builtin_ia32_pause();
    ++spins;
  } else {
    sched_yield();  // more threads than cores: let the holder run
  }
}

void RwSpinLock::read_lock_slow() {
  read_waiters_.fetch_add(1, std::memory_order_relaxed);
  unsigned spins = 0;
  for (;;) {
    std::uint32_t v = state_.load(std::memory_order_relaxed);
    if ((v & kWriterBits) == 0 &&
        state_.compare_exchange_weak(v, v + kReader, std::memory_order_acquire, std::memory_order_relaxed))
      break;
    spin_backoff(spins);
  }
  read_waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void RwSpinLock::write_lock_slow() {
  unsigned spins = 0;
  for (;;) {
    std::uint32_t v = state_.load(std::memory_order_relaxed);
    if ((v & ~kWriterWaiting) == 0) {  // no holder: take it (other waiting writers re-announce)
      if (state_.compare_exchange_weak(v, kWriter, std::memory_order_acquire, std::memory_order_relaxed)) return;
      continue;
    }
    if ((v & kWriterWaiting) == 0) state_.fetch_or(kWriterWaiting, std::memory_order_relaxed);
    spin_backoff(spins);
  }
}

void SpinLock::lock_slow() {
  unsigned spins = 0;
  for (;;) {
    while (locked_.load(std::memory_order_relaxed)) spin_backoff(spins);
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

}  // namespace memdesc

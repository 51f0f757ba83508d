// bench/suite.hpp — the runner every memdesc benchmark suite uses.
//
// A suite measures "subjects" (memdesc and its peers) on named cases. Each case runs `rounds`
// times; within a round every subject runs once, in an order rotated by the round, so slow
// drifts of the machine hit all subjects alike (interleaving). Before the first round each
// subject runs once unrecorded (warm-up). A case reports per subject the median, min and max
// of its rounds in ns per operation, and the ratio memdesc / best peer.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <memdesc/arena.hpp>
#include <memory>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peers.hpp"

namespace memdesc::bench {

using Clock = std::chrono::steady_clock;

// Keeps the compiler from dropping an allocation whose result is unused.
inline void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

inline double ns_per_op(Clock::time_point t0, std::size_t ops) {
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(ops);
}

// Passes n pointers from the calling thread (produce()) to a consumer thread (consume(p))
// through `slots` slots, each empty when null, as the kernel's ptr_ring; ns per pointer.
template <class Produce, class Consume>
double pass_through_ring(std::size_t n, std::size_t slots, Produce produce, Consume consume) {
  std::vector<std::atomic<void*>> ring(slots);
  for (auto& s : ring) s.store(nullptr, std::memory_order_relaxed);
  auto t0 = Clock::now();
  std::thread consumer([&] {
    for (std::size_t i = 0; i < n; ++i) {
      std::atomic<void*>& slot = ring[i % slots];
      void* p;
      while (!(p = slot.load(std::memory_order_acquire))) __builtin_ia32_pause();
      slot.store(nullptr, std::memory_order_relaxed);
      consume(p);
    }
  });
  for (std::size_t i = 0; i < n; ++i) {
    std::atomic<void*>& slot = ring[i % slots];
    while (slot.load(std::memory_order_acquire)) __builtin_ia32_pause();
    slot.store(produce(), std::memory_order_release);
  }
  consumer.join();
  return ns_per_op(t0, n);
}

// Runs f in a forked child; returns {ns per op, peak RSS growth in bytes}. The child has only
// the parent's memory plus what this one allocator takes, so the peak is that allocator's.
struct ChildResult {
  double ns = 0;
  double peak_rss = 0;
};

template <class F>
ChildResult in_child(F f) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::size_t base = process_rss_bytes();
    ChildResult r;
    r.ns = f();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.peak_rss = static_cast<double>(static_cast<std::size_t>(ru.ru_maxrss) * 1024 - base);
    ssize_t w = write(fds[1], &r, sizeof r);
    (void)w;
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  ssize_t n = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (n != static_cast<ssize_t>(sizeof r) || !WIFEXITED(status)) return {-1, 0};
  return r;
}

// The arena a suite runs memdesc on; null (after saying why on stderr) if it cannot be made.
std::unique_ptr<Arena> make_suite_arena(const char* suite, const ArenaConfig& cfg);

// Pins the calling thread to the CPU it runs on for its lifetime, so every subject of a
// single-threaded case is timed on the same core (on a VM the cores can differ by 2x).
// Threads inherit affinity: release the pin before starting threads that must spread out.
class CpuPin {
 public:
  CpuPin();
  ~CpuPin();
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;
  int cpu() const { return cpu_; }

 private:
  int cpu_ = -1;
  bool restored_mask_valid_ = false;
  unsigned char saved_[128];  // cpu_set_t
};

struct SuiteOptions {
  bool smoke = false;  // tiny sizes, one round: checks the suite runs, measures nothing
  bool json = false;
  unsigned rounds = 5;
  std::string only;  // run only the cases whose name contains this
};

class Suite {
 public:
  Suite(std::string name, std::vector<std::string> subjects, SuiteOptions o);

  // run(i) performs one timed repetition for subject i and returns ns per operation.
  void run_case(const std::string& case_name, const std::function<double(std::size_t)>& run);

  void note_missing(const std::string& what) { missing_.push_back(what); }
  void set_extra(const std::string& key, nlohmann::json v) { extra_[key] = std::move(v); }

  nlohmann::json to_json() const;
  static double median(std::vector<double> v);  // of an even count: the mean of the middle two
  void print_table(std::FILE* out) const;
  // Prints JSON or the table, as the options ask.
  void report(std::FILE* out) const;

 private:
  struct CaseResult {
    std::string name;
    std::vector<std::vector<double>> samples;  // [subject][round]
  };

  std::string name_;
  std::vector<std::string> subjects_;  // subjects_[0] is memdesc
  SuiteOptions o_;
  std::vector<CaseResult> cases_;
  std::vector<std::string> missing_;
  nlohmann::json extra_ = nlohmann::json::object();
};

// A suite whose subjects are memdesc, then every peer that loaded; missing peers are noted.
Suite peer_suite(std::string name, const Peers& peers, SuiteOptions o);

}  // namespace memdesc::bench

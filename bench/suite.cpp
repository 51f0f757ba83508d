// bench/suite.cpp — see suite.hpp.
#include "suite.hpp"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace memdesc::bench {

CpuPin::CpuPin() {
  static_assert(sizeof(cpu_set_t) <= sizeof(saved_));
  cpu_set_t old;
  if (sched_getaffinity(0, sizeof old, &old) != 0) return;
  std::memcpy(saved_, &old, sizeof old);
  restored_mask_valid_ = true;
  cpu_ = sched_getcpu();
  if (cpu_ < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu_, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) cpu_ = -1;
}

CpuPin::~CpuPin() {
  if (!restored_mask_valid_) return;
  cpu_set_t old;
  std::memcpy(&old, saved_, sizeof old);
  sched_setaffinity(0, sizeof old, &old);
}

Suite::Suite(std::string name, std::vector<std::string> subjects, SuiteOptions o)
    : name_(std::move(name)), subjects_(std::move(subjects)), o_(o) {
  if (o_.smoke) o_.rounds = 1;
  if (o_.rounds == 0) o_.rounds = 1;
}

double Suite::median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void Suite::run_case(const std::string& case_name, const std::function<double(std::size_t)>& run) {
  if (!o_.only.empty() && case_name.find(o_.only) == std::string::npos) return;
  CaseResult c{case_name, std::vector<std::vector<double>>(subjects_.size())};
  const std::size_t s = subjects_.size();
  for (std::size_t i = 0; i < s; ++i) run(i);  // warm-up, unrecorded
  for (unsigned r = 0; r < o_.rounds; ++r)
    for (std::size_t j = 0; j < s; ++j) {
      std::size_t i = (j + r) % s;
      c.samples[i].push_back(run(i));
    }
  if (!o_.json) std::fprintf(stderr, "  %s done\n", case_name.c_str());
  cases_.push_back(std::move(c));
}

nlohmann::json Suite::to_json() const {
  nlohmann::json cases = nlohmann::json::array(), ratios = nlohmann::json::object();
  for (const CaseResult& c : cases_) {
    double best = std::numeric_limits<double>::infinity();
    std::string best_name;
    for (std::size_t i = 0; i < subjects_.size(); ++i) {
      double m = median(c.samples[i]);
      auto [mn, mx] = std::minmax_element(c.samples[i].begin(), c.samples[i].end());
      cases.push_back({{"name", c.name}, {"allocator", subjects_[i]}, {"median_ns", m}, {"min_ns", *mn}, {"max_ns", *mx}});
      if (i > 0 && m < best) best = m, best_name = subjects_[i];
    }
    if (!best_name.empty()) ratios[c.name] = {{"vs_best_peer", median(c.samples[0]) / best}, {"best_peer", best_name}};
  }
  nlohmann::json j = {{"suite", name_}, {"smoke", o_.smoke}, {"rounds", o_.rounds}, {"cases", cases},
                      {"ratios", ratios}, {"missing_peers", missing_}};
  for (auto& [k, v] : extra_.items()) j[k] = v;
  return j;
}

void Suite::print_table(std::FILE* out) const {
  nlohmann::json j = to_json();
  std::fprintf(out, "suite %s%s, %u round%s, median ns per operation\n\n", name_.c_str(), o_.smoke ? " (smoke)" : "",
               o_.rounds, o_.rounds == 1 ? "" : "s");
  std::fprintf(out, "%-22s", "case");
  for (const auto& s : subjects_) std::fprintf(out, " %10s", s.c_str());
  std::fprintf(out, "   memdesc / best peer\n");
  for (const CaseResult& c : cases_) {
    std::fprintf(out, "%-22s", c.name.c_str());
    for (std::size_t i = 0; i < subjects_.size(); ++i) std::fprintf(out, " %10.1f", median(c.samples[i]));
    if (j["ratios"].contains(c.name))
      std::fprintf(out, "   %.2f (%s)", j["ratios"][c.name]["vs_best_peer"].get<double>(),
                   j["ratios"][c.name]["best_peer"].get<std::string>().c_str());
    std::fprintf(out, "\n");
  }
  for (const auto& m : missing_) std::fprintf(out, "missing peer: %s\n", m.c_str());
  if (o_.smoke) std::fprintf(out, "\n(smoke mode: sizes are tiny; the figures are not measurements)\n");
}

Suite peer_suite(std::string name, const Peers& peers, SuiteOptions o) {
  std::vector<std::string> names{"memdesc"};
  for (const Peer& p : peers.loaded) names.push_back(p.name);
  Suite suite(std::move(name), names, o);
  for (const auto& m : peers.missing) suite.note_missing(m);
  return suite;
}

void Suite::report(std::FILE* out) const {
  if (!o_.only.empty() && cases_.empty())
    throw std::runtime_error("bench " + name_ + ": no case matches --only '" + o_.only + "'");
  if (o_.json) std::fprintf(out, "%s\n", to_json().dump(2).c_str());
  else print_table(out);
}

std::unique_ptr<Arena> make_suite_arena(const char* suite, const ArenaConfig& cfg) {
  auto created = Arena::create(cfg);
  if (!created.ok()) {
    std::fprintf(stderr, "memdesc bench %s: %s\n", suite, describe(created.error()).c_str());
    return nullptr;
  }
  return std::move(created.value());
}

}  // namespace memdesc::bench

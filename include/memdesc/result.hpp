// memdesc/result.hpp — recoverable errors. Layer: base (its public face).
// Allocation failure is not misuse: it returns an Error (and, for the kernel-style functions
// that return a pointer, null plus last_error()).
#pragma once
#include <cstdint>
#include <string>
#include <utility>

namespace memdesc {

enum class Errc : std::uint8_t {
  ok = 0,
  out_of_memory,   // no free block of the requested order in any allowed zone
  invalid_config,  // an ArenaConfig value is out of range
  os_error,        // a system call failed; Error::os_errno says which error
  invalid_request, // a request no state of the allocator could serve (e.g. a fragment larger than a block)
};

const char* errc_name(Errc e);

struct Error {
  Errc code = Errc::ok;
  int os_errno = 0;           // errno of the failed system call, when code == os_error
  const char* what = "";      // static text: what was being done

  explicit operator bool() const { return code != Errc::ok; }  // true when there IS an error
  static Error none() { return {}; }
};

// "out of memory: <what>" or "system call failed: <what>: <strerror(os_errno)>".
std::string describe(const Error& e);

// A value or an error. Small on purpose: memdesc needs nothing more.
template <class T>
class Result {
 public:
  Result(T v) : value_(std::move(v)) {}  // NOLINT: implicit by design
  Result(Error e) : err_(e) {}           // NOLINT
  bool ok() const { return err_.code == Errc::ok; }
  T& value() { return value_; }
  const Error& error() const { return err_; }

 private:
  T value_{};
  Error err_{};
};

}  // namespace memdesc

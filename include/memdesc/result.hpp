// memdesc/result.hpp — recoverable errors. Layer: base (its public face).
// Allocation failure is not misuse: it returns an Error (and, for the kernel-style functions
// that return a pointer, null plus last_error()).
#pragma once
#include <cstdint>
#include <new>
#include <type_traits>
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

struct [[nodiscard]] Error {
  Errc code = Errc::ok;
  int os_errno = 0;           // errno of the failed system call, when code == os_error
  const char* what = "";      // static text: what was being done

  explicit operator bool() const { return code != Errc::ok; }  // true when there IS an error
  static Error none() { return {}; }
};

// "out of memory: <what>" or "system call failed: <what>: <strerror(os_errno)>".
std::string describe(const Error& e);

namespace detail {
// Reading the value of a Result that holds an error is misuse: a fatal report naming the error.
[[noreturn]] void result_has_no_value(const Error& e);
}  // namespace detail

// A value or an error; must be looked at ([[nodiscard]]). T need not be default-constructible.
// value() on an error is a fatal report, never a default-constructed T. The error's code says
// which member is live (Errc::ok: the value), so a Result costs sizeof(T) + sizeof(Error), and
// is trivially copyable when T is.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : value_(std::move(v)) {}  // NOLINT: implicit by design
  Result(Error e) : err_(e) {            // NOLINT
    if (!err_) err_ = Error{Errc::invalid_request, 0, "Result made from Error::none()"};
  }
  Result(const Result&) requires std::is_trivially_copy_constructible_v<T> = default;
  Result(const Result& o) requires(!std::is_trivially_copy_constructible_v<T>) : err_(o.err_) {
    if (o.ok()) new (&value_) T(o.value_);
  }
  Result(Result&&) requires std::is_trivially_move_constructible_v<T> = default;
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>)
    requires(!std::is_trivially_move_constructible_v<T>)
      : err_(o.err_) {
    if (o.ok()) new (&value_) T(std::move(o.value_));
  }
  Result& operator=(const Result&) = delete;  // a Result is read, not reassigned
  Result& operator=(Result&&) = delete;
  ~Result() requires std::is_trivially_destructible_v<T> = default;
  ~Result() requires(!std::is_trivially_destructible_v<T>) {
    if (ok()) value_.~T();
  }

  bool ok() const { return err_.code == Errc::ok; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    if (!ok()) detail::result_has_no_value(err_);
    return value_;
  }
  const T& value() const& {
    if (!ok()) detail::result_has_no_value(err_);
    return value_;
  }
  T&& value() && {
    if (!ok()) detail::result_has_no_value(err_);
    return std::move(value_);
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return err_; }  // Errc::ok when there is a value

 private:
  union {
    T value_;
  };
  Error err_{};
};

}  // namespace memdesc

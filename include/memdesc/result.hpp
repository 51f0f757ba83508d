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

namespace detail {
// Result's storage: the error's code says which member is live (Errc::ok: the value). For a
// trivially destructible T (pointers, handles, sizes) it is trivially copyable; otherwise it
// moves and destroys the value it holds.
template <class T, bool = std::is_trivially_destructible_v<T>>
struct ResultStorage {
  explicit ResultStorage(T v) : value(std::move(v)) {}
  explicit ResultStorage(Error e) : err(e) {}
  union {
    T value;
  };
  Error err{};
};
template <class T>
struct ResultStorage<T, false> {
  explicit ResultStorage(T v) : value(std::move(v)) {}
  explicit ResultStorage(Error e) : err(e) {}
  ResultStorage(ResultStorage&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : err(o.err) {
    if (err.code == Errc::ok) new (&value) T(std::move(o.value));
  }
  ResultStorage& operator=(ResultStorage&&) = delete;
  ~ResultStorage() {
    if (err.code == Errc::ok) value.~T();
  }
  union {
    T value;
  };
  Error err{};
};
}  // namespace detail

// A value or an error; must be looked at ([[nodiscard]]). T need not be default-constructible.
// value() on an error is a fatal report, never a default-constructed T. A Result costs
// sizeof(T) + sizeof(Error).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : s_(std::move(v)) {}  // NOLINT: implicit by design
  Result(Error e) : s_(e) {          // NOLINT
    if (!s_.err) s_.err = Error{Errc::invalid_request, 0, "Result made from Error::none()"};
  }

  bool ok() const { return s_.err.code == Errc::ok; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    if (!ok()) detail::result_has_no_value(s_.err);
    return s_.value;
  }
  const T& value() const& {
    if (!ok()) detail::result_has_no_value(s_.err);
    return s_.value;
  }
  T&& value() && {
    if (!ok()) detail::result_has_no_value(s_.err);
    return std::move(s_.value);
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { return s_.err; }  // Errc::ok when there is a value

 private:
  detail::ResultStorage<T> s_;
};

}  // namespace memdesc

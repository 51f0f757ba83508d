// base/last_error.hpp — the calling thread's last recoverable error: the kernel-style calls that
// return a pointer return null and leave the reason here (memdesc::last_error() reads it).
// Every layer writes it through set_last_error(); nothing else keeps such state.
#pragma once
#include <memdesc/result.hpp>

namespace memdesc {

namespace detail {
inline constinit thread_local Error tls_last_error{};
}  // namespace detail

inline void set_last_error(Errc code, const char* what) { detail::tls_last_error = Error{code, 0, what}; }
inline const Error& current_last_error() { return detail::tls_last_error; }

}  // namespace memdesc

// base/result.cpp — names and text for recoverable errors.
#include <memdesc/result.hpp>

#include "base/report.hpp"

#include <cstring>
#include <string>

namespace memdesc {

const char* errc_name(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::out_of_memory: return "out of memory";
    case Errc::invalid_config: return "invalid configuration";
    case Errc::os_error: return "system call failed";
    case Errc::invalid_request: return "invalid request";
  }
  return "?";
}

std::string describe(const Error& e) {
  std::string s = errc_name(e.code);
  if (e.what && *e.what) s += std::string(": ") + e.what;
  if (e.os_errno) s += std::string(": ") + std::strerror(e.os_errno);
  return s;
}

namespace detail {
void result_has_no_value(const Error& e) {
  report_bad_argument("Result::value", (std::string("the result holds an error: ") + describe(e)).c_str());
}
}  // namespace detail

}  // namespace memdesc

// Errors are values: a Result<T> holds either a T or an Error whose message a
// user can act on. No exception crosses a module boundary (DESIGN.md).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace kindling {

struct Error {
  std::string message;
  // A stable, machine-readable kind ("not_found", "conflict", ...); empty
  // means an internal error. Callers at the edge map it to a status code.
  std::string code;
  // For refusals that pass with time ("rate_limited", "capacity"): when to
  // try again, in seconds; 0 if unknown.
  int retry_after_seconds = 0;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

inline Error make_error(std::string message, std::string code = {}) {
  return Error{std::move(message), std::move(code)};
}

}  // namespace kindling

// Unwraps a Result into `var`, or returns its error from the enclosing function.
#define KINDLING_TRY(var, expr)         \
  auto var##_result_ = (expr);          \
  if (!var##_result_) return var##_result_.error(); \
  auto var = std::move(var##_result_).value()

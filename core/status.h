// Status helpers shared by every module. Library code returns absl::Status / StatusOr
// with messages of the form "<component>: <input>: <problem>[; <fix>]"; only cli/ turns
// them into an exit code.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/strings/str_cat.h>

#include <cstdio>
#include <cstdlib>

#define AUGUR_CONCAT_INNER_(a, b) a##b
#define AUGUR_CONCAT_(a, b) AUGUR_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define AUGUR_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::absl::Status _augur_st = (expr);              \
    if (!_augur_st.ok()) return _augur_st;          \
  } while (0)

// AUGUR_ASSIGN_OR_RETURN(auto x, MakeX()); declares x or returns the error.
#define AUGUR_ASSIGN_OR_RETURN(lhs, expr) \
  AUGUR_ASSIGN_OR_RETURN_IMPL_(AUGUR_CONCAT_(_augur_or_, __LINE__), lhs, expr)
#define AUGUR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// Internal invariant (never user input): prints file:line and aborts.
#define AUGUR_CHECK(cond, ...)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "augur: internal check failed at %s:%d: %s %s\n", __FILE__, \
                   __LINE__, #cond, ::absl::StrCat("", ##__VA_ARGS__).c_str());       \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

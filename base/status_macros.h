// Early returns for functions that return absl::Status or absl::StatusOr<T>:
//
//   PEAKKNN_RETURN_IF_ERROR(file->Sync());
//   PEAKKNN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
//                            env->NewWritableFile(path));
//
// The error is returned unchanged (code and message).
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PEAKKNN_RETURN_IF_ERROR(expr)                                     \
  do {                                                                    \
    if (::absl::Status peakknn_status_ = (expr); !peakknn_status_.ok()) { \
      return peakknn_status_;                                             \
    }                                                                     \
  } while (false)

// `lhs` may declare a variable ("auto x") or name an existing one.
#define PEAKKNN_ASSIGN_OR_RETURN(lhs, rexpr)                                  \
  PEAKKNN_ASSIGN_OR_RETURN_IMPL(PEAKKNN_STATUS_CONCAT(peakknn_or_, __LINE__), \
                                lhs, rexpr)

#define PEAKKNN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();       \
  lhs = *std::move(tmp)

#define PEAKKNN_STATUS_CONCAT(a, b) PEAKKNN_STATUS_CONCAT_INNER(a, b)
#define PEAKKNN_STATUS_CONCAT_INNER(a, b) a##b

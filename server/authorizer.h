// Who may call which peakknn.v1.VectorSearch method: the method -> role
// table, and the role tokens of --auth_tokens_file, reloaded when the file
// changes.
//
// Roles: read (Search, Get, DescribeCollection, ListCollections,
// PlanRecall, GetStats), write (read's + InsertStream, Upsert, Delete),
// admin (write's + CreateCollection, DropCollection). A caller sends
// "authorization: Bearer <token>"; a call without one, or with a token not
// in the file, is UNAUTHENTICATED; a token whose role is too weak is
// PERMISSION_DENIED naming the method, the role it needs and the role held.
// Tokens are never logged or echoed. Only VectorSearch is checked: health
// and reflection stay open (a probe needs no token).
//
// Reload: every `reload_interval` the file's identity (device, inode, size,
// modification time) is compared with the loaded one; when it changed the
// file is parsed again and, if it parses, replaces the tokens at once (calls
// in flight keep the answer they got). A file that no longer parses, or is
// gone, keeps the old tokens and logs why, once per change.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/periodic_task.h"
#include "grpcpp/server_context.h"
#include "server/auth_tokens.h"

namespace peakknn::server {

// The role `method` (a VectorSearch method name, e.g. "Search") needs.
// A name not in the table needs admin: a method added to the service
// without a row fails closed (and Authorizer::Open refuses to start).
Role RequiredRole(absl::string_view method);

class Authorizer {
 public:
  using LogFn = std::function<void(std::string_view line)>;

  // Loads `tokens_file` (INVALID_ARGUMENT naming file:line when it does not
  // parse) and starts watching it. INTERNAL if a VectorSearch method has no
  // row in the role table.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Open(
      const std::string& tokens_file, absl::Duration reload_interval,
      LogFn log);

  // OK when the call's token has the role `method` needs; else
  // UNAUTHENTICATED or PERMISSION_DENIED (see above).
  absl::Status Check(const grpc::ServerContextBase& ctx,
                     absl::string_view method) const;

 private:
  // What identifies one version of the file.
  struct FileVersion {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    timespec modified{};
    bool operator==(const FileVersion& other) const;
  };
  static absl::StatusOr<FileVersion> VersionOf(const std::string& path);

  Authorizer(std::string path, FileVersion version, TokenTable tokens,
             LogFn log);
  // Run by reload_: reloads the file if its version changed.
  void ReloadIfChanged();

  const std::string path_;
  const LogFn log_;
  // The version last seen (loaded, or refused and logged); only
  // ReloadIfChanged touches it after construction.
  FileVersion seen_;
  mutable std::mutex mu_;
  std::shared_ptr<const TokenTable> tokens_ ABSL_GUARDED_BY(mu_);
  // Last: stopped (joined) first on destruction, before what it uses.
  std::unique_ptr<PeriodicTask> reload_;
};

}  // namespace peakknn::server

#include "server/authorizer.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "peakknn/v1/vector_search.grpc.pb.h"

namespace peakknn::server {
namespace {

// The one method -> role table. Every VectorSearch method has a row
// (Authorizer::Open checks it against the service descriptor).
struct MethodRole {
  absl::string_view method;
  Role role;
};
constexpr MethodRole kMethodRoles[] = {
    {"Search", Role::kRead},
    {"Get", Role::kRead},
    {"DescribeCollection", Role::kRead},
    {"ListCollections", Role::kRead},
    {"PlanRecall", Role::kRead},
    {"GetStats", Role::kRead},
    {"InsertStream", Role::kWrite},
    {"Upsert", Role::kWrite},
    {"Delete", Role::kWrite},
    {"CreateCollection", Role::kAdmin},
    {"DropCollection", Role::kAdmin},
};

const MethodRole* FindMethod(absl::string_view method) {
  for (const MethodRole& row : kMethodRoles) {
    if (row.method == method) return &row;
  }
  return nullptr;
}

absl::Status CheckTableCoversService() {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::VectorSearch::service_full_name());
  if (service == nullptr) {
    return absl::InternalError(absl::StrCat(
        v1::VectorSearch::service_full_name(), ": no service descriptor"));
  }
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string& name = service->method(i)->name();
    if (FindMethod(name) == nullptr) {
      return absl::InternalError(absl::StrCat(
          "server/authorizer.cc: method ", name, " has no role in the table"));
    }
  }
  return absl::OkStatus();
}

// The token of "authorization: Bearer <token>" (the scheme is
// case-insensitive, RFC 6750), or "" when there is none.
absl::string_view BearerToken(const grpc::ServerContextBase& ctx) {
  constexpr absl::string_view kScheme = "bearer ";
  const auto& metadata = ctx.client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) return {};
  const absl::string_view value(it->second.data(), it->second.size());
  if (!absl::StartsWithIgnoreCase(value, kScheme)) return {};
  return value.substr(kScheme.size());
}

}  // namespace

Role RequiredRole(absl::string_view method) {
  const MethodRole* row = FindMethod(method);
  return row == nullptr ? Role::kAdmin : row->role;
}

bool Authorizer::FileVersion::operator==(const FileVersion& other) const {
  return device == other.device && inode == other.inode && size == other.size &&
         modified.tv_sec == other.modified.tv_sec &&
         modified.tv_nsec == other.modified.tv_nsec;
}

absl::StatusOr<Authorizer::FileVersion> Authorizer::VersionOf(
    const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth_tokens_file=", path,
                     ": cannot stat it: ", std::strerror(errno)));
  }
  return FileVersion{st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Open(
    const std::string& tokens_file, absl::Duration reload_interval, LogFn log) {
  if (absl::Status s = CheckTableCoversService(); !s.ok()) return s;
  // The version before the contents: a change made between the two is seen
  // as a change at the next check, never missed.
  absl::StatusOr<FileVersion> version = VersionOf(tokens_file);
  if (!version.ok()) return version.status();
  absl::StatusOr<TokenTable> tokens = TokenTable::Load(tokens_file);
  if (!tokens.ok()) return tokens.status();
  auto authorizer = std::unique_ptr<Authorizer>(new Authorizer(
      tokens_file, *version, *std::move(tokens), std::move(log)));
  authorizer->reload_ = std::make_unique<PeriodicTask>(
      reload_interval, [a = authorizer.get()] { a->ReloadIfChanged(); });
  return authorizer;
}

Authorizer::Authorizer(std::string path, FileVersion version, TokenTable tokens,
                       LogFn log)
    : path_(std::move(path)),
      log_(std::move(log)),
      seen_(version),
      tokens_(std::make_shared<const TokenTable>(std::move(tokens))) {}

void Authorizer::ReloadIfChanged() {
  absl::StatusOr<FileVersion> version = VersionOf(path_);
  if (!version.ok()) {
    // Logged once: seen_ becomes "gone" until the file is back.
    if (!(seen_ == FileVersion{})) {
      log_(absl::StrCat(version.status().message(),
                        "; keeping the tokens loaded before"));
      seen_ = FileVersion{};
    }
    return;
  }
  if (*version == seen_) return;
  seen_ = *version;
  absl::StatusOr<TokenTable> tokens = TokenTable::Load(path_);
  if (!tokens.ok()) {
    log_(absl::StrCat("tokens file not reloaded: ", tokens.status().message(),
                      "; keeping the tokens loaded before"));
    return;
  }
  const size_t count = tokens->size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens_ = std::make_shared<const TokenTable>(*std::move(tokens));
  }
  log_(absl::StrCat("reloaded ", count, " tokens from ", path_));
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& ctx,
                               absl::string_view method) const {
  const absl::string_view token = BearerToken(ctx);
  std::shared_ptr<const TokenTable> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens = tokens_;
  }
  const std::optional<Role> held =
      token.empty() ? std::nullopt : tokens->Find(token);
  if (!held.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat(method,
                     ": missing or unknown token; send authorization: Bearer "
                     "<token>"));
  }
  const Role needed = RequiredRole(method);
  if (static_cast<int>(*held) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " needs role ", RoleName(needed),
                     " or higher; this token has role ", RoleName(*held)));
  }
  return absl::OkStatus();
}

}  // namespace peakknn::server

#include "server/tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace peakknn::server {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

absl::StatusOr<std::unique_ptr<BIO, BioFree>> OpenPem(const char* flag,
                                                      const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": cannot read it"));
  }
  return bio;
}

absl::StatusOr<std::unique_ptr<X509, X509Free>> ReadCertificate(
    const char* flag, const std::string& path) {
  absl::StatusOr<std::unique_ptr<BIO, BioFree>> bio = OpenPem(flag, path);
  if (!bio.ok()) return bio.status();
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": holds no PEM certificate"));
  }
  return cert;
}

// The key is read only to check that it is the certificate's; gRPC reads
// the files itself.
absl::Status CheckIdentity(const ServerConfig& config) {
  absl::StatusOr<std::unique_ptr<X509, X509Free>> cert =
      ReadCertificate("tls_cert_file", config.tls_cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::unique_ptr<BIO, BioFree>> bio =
      OpenPem("tls_key_file", config.tls_key_file);
  if (!bio.ok()) return bio.status();
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(bio->get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key_file=", config.tls_key_file,
                     ": holds no unencrypted PEM private key"));
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key_file=", config.tls_key_file,
        ": is not the key of --tls_cert_file=", config.tls_cert_file));
  }
  return absl::OkStatus();
}

}  // namespace

const char* TransportName(const ServerConfig& config) {
  if (config.tls_cert_file.empty()) return "plaintext";
  return config.tls_client_ca_file.empty() ? "TLS" : "mutual TLS";
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const ServerConfig& config) {
  if (config.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  if (absl::Status s = CheckIdentity(config); !s.ok()) return s;
  const bool mutual = !config.tls_client_ca_file.empty();
  if (mutual) {
    absl::StatusOr<std::unique_ptr<X509, X509Free>> ca =
        ReadCertificate("tls_client_ca_file", config.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
  }
  // Range-checked by ValidateConfig: [1, 86400].
  const auto refresh = static_cast<unsigned>(config.tls_reload_s);
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          config.tls_key_file, config.tls_cert_file, config.tls_client_ca_file,
          refresh);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (mutual) {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace peakknn::server

#pragma once

// Certificates made inside a test with OpenSSL's own API, so TLS tests need
// neither fixtures checked into the tree (which expire) nor the `openssl`
// program on the machine that runs them.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace ap::test {

/// A certificate and its key written as PEM files.
struct pem_pair {
  std::string cert_file;
  std::string key_file;
};

/// A private certificate authority made in the test, its files under `dir`
/// (created when missing). Keys are EC P-256, signatures ECDSA-SHA256. The
/// files outlive the object: whoever chose `dir` removes it.
class test_ca {
public:
  /// Makes a self-signed CA named `name` (files dir/name-ca.pem, dir/name-ca.key);
  /// throws std::runtime_error when OpenSSL or the file system refuses.
  test_ca(std::string dir, std::string name);
  ~test_ca();
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  /// The CA certificate (PEM), for CA_FILE / curl --cacert.
  const std::string& cert_file() const;

  /// Issues a leaf certificate for `dns_names` and `ip_addresses` (subjectAltName; CN = first DNS
  /// name or IP), valid from now+not_before to now+not_after (negative values lie in the past; an
  /// expired certificate is e.g. {-48h, -24h}), with serverAuth and clientAuth extended key usage.
  /// Files dir/<file_stem>.pem/.key. Throws std::runtime_error when given no name at all.
  pem_pair issue(const std::string& file_stem, std::vector<std::string> dns_names,
                 std::vector<std::string> ip_addresses = {},
                 std::chrono::seconds not_before = std::chrono::hours(-1),
                 std::chrono::seconds not_after = std::chrono::hours(24));

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ap::test

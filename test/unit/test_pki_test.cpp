// The test PKI is what every TLS test trusts: it is checked here against
// OpenSSL's own verifier, so a TLS test that fails points at the code under
// test and not at its certificates.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "test/support/test_pki.hpp"

using namespace ap::test;

namespace {

struct scratch_dir {
  std::string path;
  scratch_dir() {
    char templ[] = "/tmp/ap-pki-unit-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(templ) != nullptr);
    path = templ;
  }
  ~scratch_dir() { std::filesystem::remove_all(path); }
};

using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

x509_ptr read_cert(const std::string& file) {
  std::unique_ptr<FILE, decltype(&std::fclose)> f{std::fopen(file.c_str(), "r"), &std::fclose};
  BOOST_REQUIRE_MESSAGE(f, "cannot open " << file);
  x509_ptr cert{PEM_read_X509(f.get(), nullptr, nullptr, nullptr), &X509_free};
  BOOST_REQUIRE_MESSAGE(cert, file << " holds no PEM certificate");
  return cert;
}

// Verifies `leaf_file` as a TLS server certificate against `ca_file` alone;
// returns OpenSSL's verification error (X509_V_OK when it verifies).
int verify(const std::string& ca_file, const std::string& leaf_file) {
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store{X509_STORE_new(), &X509_STORE_free};
  BOOST_REQUIRE(X509_STORE_load_file(store.get(), ca_file.c_str()) == 1);
  auto leaf = read_cert(leaf_file);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx{X509_STORE_CTX_new(),
                                                                        &X509_STORE_CTX_free};
  BOOST_REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr) == 1);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

bool key_matches(const std::string& cert_file, const std::string& key_file) {
  auto cert = read_cert(cert_file);
  std::unique_ptr<FILE, decltype(&std::fclose)> f{std::fopen(key_file.c_str(), "r"), &std::fclose};
  BOOST_REQUIRE(f);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free};
  BOOST_REQUIRE(key);
  return X509_check_private_key(cert.get(), key.get()) == 1;
}

} // namespace

BOOST_AUTO_TEST_SUITE(test_pki)

BOOST_AUTO_TEST_CASE(a_leaf_verifies_against_its_ca_for_its_names_only) {
  scratch_dir dir;
  test_ca ca{dir.path, "unit"};
  BOOST_TEST(ca.cert_file() == dir.path + "/unit-ca.pem");
  BOOST_TEST(std::filesystem::exists(dir.path + "/unit-ca.key"));
  auto leaf = ca.issue("server", {"localhost"}, {"127.0.0.1"});
  BOOST_TEST(leaf.cert_file == dir.path + "/server.pem");
  BOOST_TEST(leaf.key_file == dir.path + "/server.key");
  BOOST_TEST(verify(ca.cert_file(), leaf.cert_file) == X509_V_OK);
  BOOST_TEST(key_matches(leaf.cert_file, leaf.key_file));
  BOOST_TEST(key_matches(ca.cert_file(), dir.path + "/unit-ca.key"));
  // Only the owner may read a key.
  auto perms = std::filesystem::status(leaf.key_file).permissions();
  BOOST_TEST(((perms & std::filesystem::perms::group_read) == std::filesystem::perms::none));

  auto cert = read_cert(leaf.cert_file);
  BOOST_TEST(X509_check_host(cert.get(), "localhost", 0, 0, nullptr) == 1);
  BOOST_TEST(X509_check_host(cert.get(), "example.com", 0, 0, nullptr) == 0);
  BOOST_TEST(X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1);
  BOOST_TEST(X509_check_ip_asc(cert.get(), "127.0.0.2", 0) == 0);
  // Usable by a server and by a client (mutual TLS).
  BOOST_TEST(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0) == 1);
  BOOST_TEST(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1);
  BOOST_TEST(X509_check_ca(cert.get()) == 0);
  BOOST_TEST(X509_check_ca(read_cert(ca.cert_file()).get()) != 0);
}

BOOST_AUTO_TEST_CASE(another_ca_and_past_dates_do_not_verify) {
  scratch_dir dir;
  test_ca first{dir.path, "first"};
  test_ca second{dir.path, "second"};
  auto leaf = first.issue("leaf", {"localhost"});
  BOOST_TEST(verify(first.cert_file(), leaf.cert_file) == X509_V_OK);
  BOOST_TEST(verify(second.cert_file(), leaf.cert_file) != X509_V_OK);

  auto expired = first.issue("expired", {"localhost"}, {}, std::chrono::hours(-48),
                             std::chrono::hours(-24));
  BOOST_TEST(verify(first.cert_file(), expired.cert_file) == X509_V_ERR_CERT_HAS_EXPIRED);
  auto early = first.issue("early", {}, {"127.0.0.1"}, std::chrono::hours(24), std::chrono::hours(48));
  BOOST_TEST(verify(first.cert_file(), early.cert_file) == X509_V_ERR_CERT_NOT_YET_VALID);
  // CN falls back to the IP address when there is no DNS name.
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(read_cert(early.cert_file).get()), NID_commonName, cn,
                            sizeof cn);
  BOOST_TEST(std::string{cn} == "127.0.0.1");
  BOOST_CHECK_THROW(first.issue("nameless", {}), std::runtime_error);
  BOOST_CHECK_THROW(first.issue("bad-ip", {}, {"not-an-ip"}), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

#include "test/support/test_pki.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace ap::test {

namespace {

template <class T, void (*Free)(T*)>
struct openssl_free {
  void operator()(T* p) const { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_free<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_free<BIO, BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_free<BIGNUM, BN_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, openssl_free<X509_EXTENSION, X509_EXTENSION_free>>;
using names_ptr = std::unique_ptr<GENERAL_NAMES, openssl_free<GENERAL_NAMES, GENERAL_NAMES_free>>;

// Throws with what OpenSSL queued about the failure, and clears its queue so
// the next call's error is not mixed with this one's.
[[noreturn]] void fail(const std::string& what) {
  std::string why;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    why += why.empty() ? "" : "; ";
    why += text;
  }
  throw std::runtime_error("test_pki: " + what + (why.empty() ? "" : ": " + why));
}

template <class T>
T* check(T* p, const std::string& what) {
  if (!p)
    fail(what);
  return p;
}

void check(int ok, const std::string& what) {
  if (ok != 1)
    fail(what);
}

pkey_ptr new_key() {
  return pkey_ptr{check(EVP_EC_gen("P-256"), "cannot generate a P-256 key")};
}

// A random 127-bit serial: positive, and unique enough that a verifier never
// meets two certificates of one issuer with the same serial.
void set_random_serial(X509* cert) {
  bn_ptr bn{check(BN_new(), "BN_new")};
  check(BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY), "BN_rand");
  check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) ? 1 : 0, "serial number");
}

void set_common_name(X509_NAME* name, const std::string& cn) {
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0),
        "subject name '" + cn + "'");
}

// Extensions given in OpenSSL's configuration syntax; `ctx` names the
// issuer and subject, which the key identifier extensions read.
void add_extension(X509* cert, X509V3_CTX& ctx, int nid, const char* value) {
  ext_ptr ext{check(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value),
                    std::string{"extension "} + OBJ_nid2sn(nid) + " = " + value)};
  check(X509_add_ext(cert, ext.get(), -1), "adding extension");
}

// Built name by name rather than as "DNS:a,IP:b" text, so a name is never
// parsed as configuration syntax.
void add_subject_alt_names(X509* cert, const std::vector<std::string>& dns_names,
                           const std::vector<std::string>& ip_addresses) {
  names_ptr names{check(GENERAL_NAMES_new(), "GENERAL_NAMES_new")};
  for (const auto& dns : dns_names) {
    auto* text = check(ASN1_IA5STRING_new(), "ASN1_IA5STRING_new");
    if (ASN1_STRING_set(text, dns.data(), static_cast<int>(dns.size())) != 1) {
      ASN1_IA5STRING_free(text);
      fail("DNS name '" + dns + "'");
    }
    auto* name = GENERAL_NAME_new();
    if (!name) {
      ASN1_IA5STRING_free(text);
      fail("GENERAL_NAME_new");
    }
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const auto& ip : ip_addresses) {
    auto* octets = a2i_IPADDRESS(ip.c_str());
    if (!octets)
      fail("'" + ip + "' is not an IP address");
    auto* name = GENERAL_NAME_new();
    if (!name) {
      ASN1_OCTET_STRING_free(octets);
      fail("GENERAL_NAME_new");
    }
    GENERAL_NAME_set0_value(name, GEN_IPADD, octets);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT),
        "subjectAltName");
}

std::string to_pem(const std::function<int(BIO*)>& write) {
  bio_ptr bio{check(BIO_new(BIO_s_mem()), "BIO_new")};
  check(write(bio.get()), "PEM encoding");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

void write_file(const std::string& path, const std::string& text, bool secret) {
  namespace fs = std::filesystem;
  {
    std::ofstream out{path, std::ios::binary | std::ios::trunc};
    out << text;
    if (!out.flush())
      throw std::runtime_error("test_pki: cannot write " + path);
  }
  // Servers (and ssh-style checks) may refuse a key others can read.
  if (secret)
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
}

void write_pair(X509* cert, EVP_PKEY* key, const std::string& cert_file, const std::string& key_file) {
  write_file(cert_file, to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert); }), false);
  write_file(key_file,
             to_pem([&](BIO* b) {
               return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
             }),
             true);
}

} // namespace

struct test_ca::impl {
  std::string dir;
  std::string cert_file;
  pkey_ptr key;
  x509_ptr cert;
};

test_ca::test_ca(std::string dir, std::string name) : impl_(std::make_unique<impl>()) {
  std::filesystem::create_directories(dir);
  impl_->dir = std::move(dir);
  impl_->key = new_key();
  impl_->cert.reset(check(X509_new(), "X509_new"));
  X509* cert = impl_->cert.get();
  check(X509_set_version(cert, X509_VERSION_3), "version");
  set_random_serial(cert);
  // Wide enough around now that any leaf a test issues, even one meant to be
  // expired or not yet valid, fails for its own dates and not the CA's.
  check(X509_gmtime_adj(X509_getm_notBefore(cert), -30L * 24 * 3600) ? 1 : 0, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) ? 1 : 0, "notAfter");
  set_common_name(X509_get_subject_name(cert), name);
  check(X509_set_issuer_name(cert, X509_get_subject_name(cert)), "issuer name");
  check(X509_set_pubkey(cert, impl_->key.get()), "public key");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  add_extension(cert, ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_extension(cert, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert, ctx, NID_subject_key_identifier, "hash");
  if (X509_sign(cert, impl_->key.get(), EVP_sha256()) <= 0)
    fail("signing the CA certificate");
  impl_->cert_file = impl_->dir + "/" + name + "-ca.pem";
  write_pair(cert, impl_->key.get(), impl_->cert_file, impl_->dir + "/" + name + "-ca.key");
}

test_ca::~test_ca() = default;

const std::string& test_ca::cert_file() const {
  return impl_->cert_file;
}

pem_pair test_ca::issue(const std::string& file_stem, std::vector<std::string> dns_names,
                        std::vector<std::string> ip_addresses, std::chrono::seconds not_before,
                        std::chrono::seconds not_after) {
  if (dns_names.empty() && ip_addresses.empty())
    throw std::runtime_error("test_pki: a certificate needs a DNS name or an IP address");
  auto key = new_key();
  x509_ptr leaf{check(X509_new(), "X509_new")};
  X509* cert = leaf.get();
  check(X509_set_version(cert, X509_VERSION_3), "version");
  set_random_serial(cert);
  check(X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(not_before.count())) ? 1 : 0,
        "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(not_after.count())) ? 1 : 0,
        "notAfter");
  set_common_name(X509_get_subject_name(cert), dns_names.empty() ? ip_addresses.front()
                                                                 : dns_names.front());
  check(X509_set_issuer_name(cert, X509_get_subject_name(impl_->cert.get())), "issuer name");
  check(X509_set_pubkey(cert, key.get()), "public key");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, impl_->cert.get(), cert, nullptr, nullptr, 0);
  add_extension(cert, ctx, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert, ctx, NID_key_usage, "critical,digitalSignature");
  add_extension(cert, ctx, NID_ext_key_usage, "serverAuth,clientAuth");
  add_extension(cert, ctx, NID_subject_key_identifier, "hash");
  add_extension(cert, ctx, NID_authority_key_identifier, "keyid:always");
  add_subject_alt_names(cert, dns_names, ip_addresses);
  if (X509_sign(cert, impl_->key.get(), EVP_sha256()) <= 0)
    fail("signing the certificate for " + file_stem);
  pem_pair out{impl_->dir + "/" + file_stem + ".pem", impl_->dir + "/" + file_stem + ".key"};
  write_pair(cert, key.get(), out.cert_file, out.key_file);
  return out;
}

} // namespace ap::test

// `artifact-publisher commit-secret` (SPEC §12) as an approver runs it: the
// real binary, its output checked against values computed independently.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <unistd.h>

#include "core/crypto.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = "/tmp/ap-e2e-commit-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream{path} << content;
  return path;
}

} // namespace

BOOST_AUTO_TEST_SUITE(commit_secret_tool)

// The expected values: `openssl kdf` of OpenSSL 3.0 (see the unit test
// secret_commitments for the commands), computed once, independently.
BOOST_AUTO_TEST_CASE(prints_the_commitment_of_each_set) {
  const std::string delivery_d2 = "delivery-key-d2-0123456789abcdefghijkl";
  auto [rc, out] = run_cli({"commit-secret", "--set", "delivery", "--kid", "d2", "--value",
                            delivery_d2});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out == "b42a51c2cba49049db7593541cc3a60877f46f9a2a12d4f023475b339dd9702e\n");
  // From a file, its trailing newline not part of the secret.
  auto file = write_temp("secret", delivery_d2 + "\n");
  auto [file_rc, file_out] = run_cli({"commit-secret", "--kid", "d2", "--value", "@" + file,
                                      "--set", "delivery"});
  std::remove(file.c_str());
  BOOST_TEST(file_rc == 0, file_out);
  BOOST_TEST(file_out == out);
  auto [stripe_rc, stripe_out] = run_cli({"commit-secret", "--set", "stripe", "--kid", "s2",
                                          "--value", "sk_test_rotation_s2_0123456789abcdef"});
  BOOST_TEST(stripe_rc == 0, stripe_out);
  BOOST_TEST(stripe_out == "b0376da52e2c1932f3a8873e8d19a34cedf9aabb9fae6a61bd0b362d9c319a64\n");
  auto [token_rc, token_out] = run_cli({"commit-secret", "--set", "kernel-token", "--kid", "d2",
                                        "--value", delivery_d2});
  BOOST_TEST(token_rc == 0, token_out);
  BOOST_TEST(token_out == "e210adeecc4ee399d7165ff2e6dc833de0f512575089af47524dcca8a7b5409f\n");
  // The proof set: SHA-256 of the kid's Ed25519 public key.
  auto [proof_rc, proof_out] = run_cli({"commit-secret", "--set", "proof", "--kid", "v2",
                                        "--value", "proof-secret-v2-0123456789abcdefghijkl"});
  BOOST_TEST(proof_rc == 0, proof_out);
  BOOST_TEST(proof_out == "cec96133f5609206da4e0c20339c8fca4fa26b8cb5e3a2dd0543c1925099a490\n");
}

BOOST_AUTO_TEST_CASE(the_proof_commitment_is_the_published_keys_hash) {
  // What a running service publishes for its proof key, hashed: the
  // binaryHash a proof rotation is checked against.
  kernel_process kernel;
  const std::string secret = "e2e-commit-proof-secret-0123456789abcdef";
  service_process svc{fresh_database("ap_e2e_commit_secret"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_PROOF_SECRET", secret},
                       {"ARTIFACT_PUBLISHER_PROOF_KID", "v7"}}};
  auto reply = http_call(svc.port(), "GET", "/api/proof/keys");
  BOOST_REQUIRE_MESSAGE(reply.status == 200, reply.body);
  auto keys = parse_json(reply.body);
  BOOST_REQUIRE(keys["keys"].Size() == 1u);
  BOOST_TEST(std::string{keys["keys"][0]["kid"].GetString()} == "v7");
  auto public_key = crypto::base64_decode(keys["keys"][0]["publicKey"].GetString());
  BOOST_REQUIRE(public_key);
  auto [rc, out] = run_cli({"commit-secret", "--set", "proof", "--kid", "v7", "--value", secret});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out == crypto::sha256_hex(*public_key) + "\n");
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_with_a_message) {
  auto [set_rc, set_out] =
    run_cli({"commit-secret", "--set", "vault", "--kid", "x1", "--value", "some-secret"});
  BOOST_TEST(set_rc == 2, set_out);
  BOOST_TEST(set_out.find("unknown secret set 'vault'") != std::string::npos, set_out);
  auto [missing_rc, missing_out] = run_cli({"commit-secret", "--set", "delivery", "--kid", "d2"});
  BOOST_TEST(missing_rc == 2, missing_out);
  BOOST_TEST(missing_out.find("usage: artifact-publisher commit-secret") != std::string::npos,
             missing_out);
  auto [file_rc, file_out] = run_cli({"commit-secret", "--set", "delivery", "--kid", "d2",
                                      "--value", "@/nonexistent/secret-file"});
  BOOST_TEST(file_rc == 2, file_out);
  BOOST_TEST(file_out.find("cannot read secret file /nonexistent/secret-file") != std::string::npos,
             file_out);
  auto [twice_rc, twice_out] = run_cli({"commit-secret", "--set", "delivery", "--set", "stripe",
                                        "--kid", "d2", "--value", "x"});
  BOOST_TEST(twice_rc == 2, twice_out);
  auto [help_rc, help_out] = run_cli({"--help"});
  BOOST_TEST(help_rc == 0);
  BOOST_TEST(help_out.find("commit-secret --set proof|delivery|stripe|kernel-token") != std::string::npos,
             help_out);
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include "core/crypto.hpp"
#include "test/support/print.hpp"
#include "core/json.hpp"
#include "domain/multisig.hpp"

using namespace ap;
using namespace ap::domain;

namespace {

std::string seed_of(char c) {
  return std::string(32, c);
}

struct book_fixture {
  std::map<std::string, std::string> registry{{"alice", crypto::ed25519_public_key(seed_of('a'))},
                                              {"bob", crypto::ed25519_public_key(seed_of('b'))},
                                              {"carol", crypto::ed25519_public_key(seed_of('c'))}};
  std::map<std::string, char> seeds{{"alice", 'a'}, {"bob", 'b'}, {"carol", 'c'}, {"mallory", 'm'}};
  upgrade_book book{registry, 2};
  std::int64_t now = 1'700'000'000'000;

  upgrade_proposal proposal(std::string version = "1.1.0",
                            std::vector<std::string> approvers = {"alice", "bob"}) {
    upgrade_proposal p;
    p.version = version;
    p.binary_hash = std::string(64, 'a');
    p.approvers = std::move(approvers);
    return p;
  }

  std::string sign(const upgrade_record& r, const std::string& approver) {
    return crypto::base64_encode(crypto::ed25519_sign(
      seed_of(seeds.at(approver)), approval_message(r.upgrade_id, r.payload_hash, approver)));
  }

  upgrade_record proposed(upgrade_proposal p) {
    upgrade_record r;
    auto refused = book.propose(p, now, r);
    BOOST_REQUIRE_MESSAGE(!refused, refused->message);
    return r;
  }

  std::optional<multisig_refusal> approve(const upgrade_record& r, const std::string& who) {
    upgrade_record out;
    return book.approve(r.upgrade_id, who, sign(r, who), now, out);
  }

  std::optional<multisig_refusal> apply(const upgrade_record& r) {
    upgrade_record out;
    return book.apply(r.upgrade_id, "admin", now, out);
  }
};

// The status SPEC §7 gives each kind of refusal.
int status_of(const std::optional<multisig_refusal>& r) {
  if (!r)
    return 0;
  switch (r->kind) {
    case refusal_kind::invalid_input:
      return 400;
    case refusal_kind::forbidden:
      return 403;
    case refusal_kind::not_found:
      return 404;
    case refusal_kind::conflict:
      return 409;
    case refusal_kind::gone:
      return 410;
  }
  return -1;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(multisig_rules, book_fixture)

BOOST_AUTO_TEST_CASE(ids_and_messages_follow_the_spec) {
  auto p = proposal();
  // The canonical payload, hashed by hand.
  auto expected = crypto::sha256_hex(
    R"({"approvers":["alice","bob"],"binaryHash":")" + std::string(64, 'a')
    + R"(","kind":"upgrade","notes":"","version":"1.1.0"})");
  BOOST_TEST(upgrade_payload_hash(p) == expected);
  BOOST_TEST(upgrade_id_for(expected) == "upg_" + expected.substr(0, 24));
  BOOST_TEST(approval_message("upg_x", "h", "alice") == "artifact-publisher/upgrade/v1:upg_x:h:alice");
}

BOOST_AUTO_TEST_CASE(two_of_two_and_two_of_three_apply) {
  auto r = proposed(proposal());
  BOOST_TEST(status_of(apply(r)) == 409);  // insufficient_quorum
  BOOST_TEST(!approve(r, "alice"));
  BOOST_TEST(status_of(apply(r)) == 409);
  BOOST_TEST(!approve(r, "bob"));
  BOOST_TEST(!apply(r));
  BOOST_TEST(book.find(r.upgrade_id)->status == "applied");
  BOOST_TEST(book.applied_version() == "1.1.0");

  auto r3 = proposed(proposal("1.2.0", {"carol", "alice", "bob"}));
  BOOST_TEST(!approve(r3, "carol"));
  BOOST_TEST(!approve(r3, "alice"));
  BOOST_TEST(!apply(r3));
}

BOOST_AUTO_TEST_CASE(approvals_follow_the_staged_order) {
  auto r = proposed(proposal());
  auto out_of_order = approve(r, "bob");
  BOOST_TEST(status_of(out_of_order) == 409);
  BOOST_TEST(out_of_order->code == "out_of_order");
  BOOST_TEST(!approve(r, "alice"));
  auto twice = approve(r, "alice");
  BOOST_TEST(status_of(twice) == 409);
  BOOST_TEST(twice->code == "duplicate_approval");
  // carol is registered but not staged for this upgrade.
  BOOST_TEST(status_of(approve(r, "carol")) == 409);
}

BOOST_AUTO_TEST_CASE(unknown_approvers_and_bad_signatures_are_403) {
  auto r = proposed(proposal());
  BOOST_TEST(status_of(approve(r, "mallory")) == 403);
  upgrade_record out;
  // A signature by someone else's key.
  auto forged = crypto::base64_encode(crypto::ed25519_sign(
    seed_of('m'), approval_message(r.upgrade_id, r.payload_hash, "alice")));
  BOOST_TEST(book.approve(r.upgrade_id, "alice", forged, now, out)->code == "bad_signature");
  BOOST_TEST(book.approve(r.upgrade_id, "alice", "not base64!", now, out)->kind == refusal_kind::forbidden);
  // A signature over another upgrade (replay).
  auto other = proposed(proposal("1.3.0"));
  BOOST_TEST(book.approve(r.upgrade_id, "alice", sign(other, "alice"), now, out)->kind == refusal_kind::forbidden);
  // Over a tampered payload hash.
  auto tampered = crypto::base64_encode(crypto::ed25519_sign(
    seed_of('a'), approval_message(r.upgrade_id, std::string(64, '0'), "alice")));
  BOOST_TEST(book.approve(r.upgrade_id, "alice", tampered, now, out)->kind == refusal_kind::forbidden);
}

BOOST_AUTO_TEST_CASE(expiry_is_410) {
  auto r = proposed(proposal());
  BOOST_TEST(!approve(r, "alice"));
  now += upgrade_lifetime_ms;
  BOOST_TEST(status_of(approve(r, "bob")) == 410);
  BOOST_TEST(status_of(apply(r)) == 410);
}

BOOST_AUTO_TEST_CASE(apply_twice_and_rollbacks_are_409) {
  auto r = proposed(proposal("2.0.0"));
  approve(r, "alice");
  approve(r, "bob");
  BOOST_TEST(!apply(r));
  auto again = apply(r);
  BOOST_TEST(status_of(again) == 409);
  BOOST_TEST(again->code == "already_applied");
  upgrade_record out;
  auto rollback = book.propose(proposal("1.9.9"), now, out);
  BOOST_TEST(status_of(rollback) == 409);
  BOOST_TEST(rollback->code == "version_not_greater");
  BOOST_TEST(status_of(book.propose(proposal("2.0.0", {"bob", "alice"}), now, out)) == 409);
  BOOST_TEST(!book.propose(proposal("2.0.1"), now, out));
  BOOST_TEST(status_of(book.propose(proposal("2.0.1"), now, out)) == 409);  // same id exists
}

BOOST_AUTO_TEST_CASE(proposals_are_validated) {
  upgrade_record out;
  auto p = proposal();
  p.version = "1.0";
  BOOST_TEST(book.propose(p, now, out)->field == "version");
  p = proposal();
  p.binary_hash = "ABC";
  BOOST_TEST(book.propose(p, now, out)->field == "binaryHash");
  BOOST_TEST(book.propose(proposal("1.1.0", {"alice"}), now, out)->field == "approvers");
  BOOST_TEST(book.propose(proposal("1.1.0", {"alice", "alice"}), now, out)->field == "approvers[1]");
  BOOST_TEST(book.propose(proposal("1.1.0", {"alice", "mallory"}), now, out)->kind == refusal_kind::invalid_input);
  p = proposal();
  p.kind = "downgrade";
  BOOST_TEST(book.propose(p, now, out)->field == "kind");
  upgrade_book strict{registry, 3};
  BOOST_TEST(strict.propose(proposal(), now, out)->kind == refusal_kind::invalid_input);  // fewer than the threshold
}

BOOST_AUTO_TEST_CASE(secret_rotation_ignores_version_order) {
  auto r = proposed(proposal("3.0.0"));
  approve(r, "alice");
  approve(r, "bob");
  apply(r);
  auto rot = proposal("v2");
  rot.kind = "secret-rotation";
  auto rec = proposed(rot);
  approve(rec, "alice");
  approve(rec, "bob");
  BOOST_TEST(!apply(rec));
  BOOST_TEST(book.applied_version() == "3.0.0");
}

BOOST_AUTO_TEST_CASE(a_secret_rotation_names_a_set_and_kid) {
  auto p = proposal("delivery:d2");
  p.kind = "secret-rotation";
  BOOST_TEST(!validate_proposal(p, registry, 2).has_value());
  p.version = "kernel-token:" + std::string(64, 't');  // longer than a bare kid may be
  BOOST_TEST(!validate_proposal(p, registry, 2).has_value());
  for (const char* bad : {"vault:k2", "delivery:", "delivery:d 2"}) {
    p.version = bad;
    auto refusal = validate_proposal(p, registry, 2);
    BOOST_REQUIRE(refusal.has_value());
    BOOST_TEST(refusal->field == "version");
    BOOST_TEST(refusal->message.find("<set>:<kid>") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(semver_order) {
  BOOST_TEST(*compare_semver("1.0.0", "1.0.1") == -1);
  BOOST_TEST(*compare_semver("1.10.0", "1.9.0") == 1);
  BOOST_TEST(*compare_semver("1.0.0-alpha", "1.0.0") == -1);
  BOOST_TEST(*compare_semver("1.0.0-alpha.2", "1.0.0-alpha.10") == -1);
  BOOST_TEST(*compare_semver("1.0.0-alpha", "1.0.0-alpha.1") == -1);
  BOOST_TEST(*compare_semver("1.0.0+build", "1.0.0") == 0);
  BOOST_TEST(!compare_semver("01.0.0", "1.0.0"));
  BOOST_TEST(!compare_semver("1.0", "1.0.0"));
  BOOST_TEST(!is_semver("v1.0.0"));
}

BOOST_AUTO_TEST_CASE(records_render_for_clients) {
  auto r = proposed(proposal());
  approve(r, "alice");
  auto doc_text = upgrade_json(*book.find(r.upgrade_id));
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict(doc_text, doc));
  BOOST_TEST(json::canonical(doc) == doc_text);
  BOOST_TEST(std::string{doc["status"].GetString()} == "pending");
  BOOST_TEST(doc["approvals"].Size() == 1u);
  BOOST_TEST(doc["threshold"].GetInt() == 2);
}

BOOST_AUTO_TEST_SUITE_END()

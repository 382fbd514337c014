// What the service makes of the Kernel's answers to upgrade steps and reads
// (SPEC §6, §7): the record it carries, its refusals, and answers it cannot
// read, which are failures with an unknown outcome and never exceptions.
#include <boost/test/unit_test.hpp>

#include "actors/errors.hpp"
#include "actors/kernel_client.hpp"

using namespace ap;
using kernel::upgrade_call_kind;

namespace {

upstream::reply answer(int status, std::string body) {
  return {status, std::move(body), {}, true};
}

error_code code_of(const caf::error& e) {
  BOOST_REQUIRE(e.category() == error_category());
  return static_cast<error_code>(e.code());
}

const char* record = R"({"upgrade":{"approvals":[{"approvedAt":"2026-12-01T10:00:00.000Z","approver":"alice"},)"
                     R"({"approvedAt":"2026-12-01T10:00:01.000Z","approver":"bob"}],)"
                     R"("appliedAt":"2026-12-01T10:00:02.345Z","payloadHash":"abc","status":"applied",)"
                     R"("upgradeId":"upg_1"}})";

} // namespace

BOOST_AUTO_TEST_SUITE(kernel_upgrade_answers)

BOOST_AUTO_TEST_CASE(a_read_gives_the_kernels_record) {
  auto held = kernel_upgrade_answer(upgrade_call_kind::read, answer(200, record));
  BOOST_REQUIRE(held);
  BOOST_TEST(held->status == "applied");
  BOOST_TEST(held->payload_hash == "abc");
  BOOST_TEST((held->approvers == std::vector<std::string>{"alice", "bob"}));
  BOOST_TEST(held->applied_at_ms == 1796119202345);
}

BOOST_AUTO_TEST_CASE(an_apply_answer_needs_a_readable_applied_at) {
  auto ok = kernel_upgrade_answer(upgrade_call_kind::apply,
                                  answer(200, R"({"upgrade":{"appliedAt":"2026-12-01T10:00:02Z"}})"));
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->applied_at_ms == 1796119202000);
  BOOST_TEST(ok->status == "applied");
  for (const char* body : {R"({"upgrade":{"appliedAt":"2026-12-01T10:00:00.abcZ"}})",
                           R"({"upgrade":{"appliedAt":12}})", R"({"upgrade":{}})", R"(not json)",
                           R"({"upgrade":{"appliedAt":"2026-12-01T10:00:00Z trailing"}})"}) {
    auto bad = kernel_upgrade_answer(upgrade_call_kind::apply, answer(200, body));
    BOOST_TEST_REQUIRE(!bad, body);
    BOOST_TEST((code_of(bad.error()) == error_code::upstream_unavailable), body);
  }
}

BOOST_AUTO_TEST_CASE(a_read_without_a_record_is_a_failure) {
  auto bad = kernel_upgrade_answer(upgrade_call_kind::read, answer(200, R"({"status":"applied"})"));
  BOOST_REQUIRE(!bad);
  BOOST_TEST((code_of(bad.error()) == error_code::upstream_unavailable));
}

BOOST_AUTO_TEST_CASE(refusals_keep_their_kind_and_failures_are_unavailable) {
  auto conflict = kernel_upgrade_answer(upgrade_call_kind::approve,
                                        answer(409, R"({"error":"duplicate_approval","message":"twice"})"));
  BOOST_REQUIRE(!conflict);
  BOOST_TEST((code_of(conflict.error()) == error_code::conflict));
  auto missing = kernel_upgrade_answer(upgrade_call_kind::read, answer(404, "{}"));
  BOOST_REQUIRE(!missing);
  BOOST_TEST((code_of(missing.error()) == error_code::not_found));
  for (int status : {0, 500, 503}) {
    auto down = kernel_upgrade_answer(upgrade_call_kind::propose, answer(status, ""));
    BOOST_REQUIRE(!down);
    BOOST_TEST((code_of(down.error()) == error_code::upstream_unavailable));
  }
  // A step's 2xx without a record is taken (propose and approve).
  BOOST_TEST(bool(kernel_upgrade_answer(upgrade_call_kind::propose, answer(201, ""))));
}

BOOST_AUTO_TEST_SUITE_END()

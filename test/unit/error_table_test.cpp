#include <boost/test/unit_test.hpp>

#include <caf/error.hpp>
#include <caf/sec.hpp>

#include "actors/errors.hpp"
#include "domain/multisig.hpp"
#include "http/errors.hpp"

using namespace ap;

// The one table from what actors answer to HTTP statuses (http/errors.cpp).
BOOST_AUTO_TEST_SUITE(error_table)

BOOST_AUTO_TEST_CASE(every_code_has_its_status) {
  struct row {
    error_code code;
    int status;
    const char* name;
  };
  for (auto r : {row{error_code::invalid_input, 400, "invalid_input"},
                 row{error_code::forbidden, 403, "forbidden"},
                 row{error_code::not_found, 404, "not_found"},
                 row{error_code::conflict, 409, "conflict"},
                 row{error_code::gone, 410, "gone"},
                 row{error_code::idempotency_mismatch, 422, "idempotency_key_reused"},
                 row{error_code::database_unavailable, 503, "database_unavailable"},
                 row{error_code::upstream_unavailable, 502, "upstream_unavailable"},
                 row{error_code::upstream_refused, 502, "upstream_refused"},
                 row{error_code::timeout, 504, "timeout"},
                 row{error_code::internal, 500, "internal"}}) {
    auto res = http::response_for(make_error(r.code, "why"));
    BOOST_TEST(res.status == r.status, r.name);
    BOOST_TEST(res.body.find(std::string{"\"error\":\""} + r.name + "\"") != std::string::npos,
               res.body);
  }
}

BOOST_AUTO_TEST_CASE(a_named_error_answers_its_name_and_field) {
  auto res = http::response_for(
    make_named_error(error_code::conflict, "insufficient_quorum", "needs two", "approvals"));
  BOOST_TEST(res.status == 409);
  BOOST_TEST(res.body.find("\"error\":\"insufficient_quorum\"") != std::string::npos, res.body);
  BOOST_TEST(res.body.find("\"field\":\"approvals\"") != std::string::npos, res.body);
}

BOOST_AUTO_TEST_CASE(a_multisig_refusal_maps_through_the_same_table) {
  domain::multisig_refusal expired{domain::refusal_kind::gone, "expired", "too late", ""};
  auto res = http::response_for(refusal_error(expired));
  BOOST_TEST(res.status == 410);
  BOOST_TEST(res.body.find("\"error\":\"expired\"") != std::string::npos, res.body);
  domain::multisig_refusal unknown{domain::refusal_kind::forbidden, "unknown_approver", "who",
                                   "approver"};
  BOOST_TEST(http::response_for(refusal_error(unknown)).status == 403);
}

BOOST_AUTO_TEST_CASE(an_order_error_names_the_order_and_processing_is_202) {
  auto res = http::response_for(make_order_error(error_code::timeout, "late", "order_1"));
  BOOST_TEST(res.status == 504);
  BOOST_TEST(res.body.find("\"orderId\":\"order_1\"") != std::string::npos, res.body);
  auto processing = http::response_for(make_order_error(error_code::processing, "", "order_2"));
  BOOST_TEST(processing.status == 202);
  BOOST_TEST(processing.body == R"({"orderId":"order_2","status":"processing"})");
}

BOOST_AUTO_TEST_CASE(caf_request_errors_map_to_504_and_503) {
  BOOST_TEST(http::response_for(caf::make_error(caf::sec::request_timeout)).status == 504);
  BOOST_TEST(http::response_for(caf::make_error(caf::sec::request_receiver_down)).status == 503);
}

BOOST_AUTO_TEST_CASE(a_checkout_outcome_picks_its_status) {
  BOOST_TEST(http::checkout_status(domain::checkout_outcome_kind::completed) == 201);
  BOOST_TEST(http::checkout_status(domain::checkout_outcome_kind::payment_failed) == 402);
  BOOST_TEST(http::checkout_status(domain::checkout_outcome_kind::settlement_failed) == 502);
  BOOST_TEST(http::checkout_status(domain::checkout_outcome_kind::refused) == 502);
}

BOOST_AUTO_TEST_SUITE_END()

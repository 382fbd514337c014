// The delivery key set (SPEC §12) through the real binary, real sockets and
// a real PostgreSQL: which master key seals a delivery, that the delivery
// names it, and that what an older key sealed still opens.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <unistd.h>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/delivery.hpp"
#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

const std::string key_d1 = "e2e-delivery-master-key-d1-0123456789abcdef";
const std::string key_d2 = "e2e-delivery-master-key-d2-0123456789abcdef";
const std::string both_keys = R"({"d1":")" + key_d1 + R"(","d2":")" + key_d2 + R"("})";

std::string temp_path(const std::string& name) {
  return "/tmp/ap-e2e-dkeys-" + std::to_string(::getpid()) + "-" + name;
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = temp_path(name);
  std::ofstream{path} << content;
  return path;
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.IsObject() && v.HasMember(name) && v[name].IsString(),
                        "missing string " << name);
  return v[name].GetString();
}

rapidjson::Document checkout(const service_process& svc, const std::string& customer,
                             const std::string& idempotency_key = {}) {
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
  if (!idempotency_key.empty())
    headers.emplace_back("Idempotency-Key", idempotency_key);
  auto r = http_call(svc.port(), "POST", "/api/checkout", headers,
                     R"({"customerId":")" + customer
                       + R"(","email":"buyer@example.com","currency":"usd",)"
                         R"("items":[{"sku":"creator-basic","quantity":1}]})");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.status << " " << r.body);
  return parse_json(r.body);
}

rapidjson::Document read_back(const service_process& svc, const std::string& target) {
  auto r = http_call(svc.port(), "GET", target);
  BOOST_REQUIRE_MESSAGE(r.status == 200, target << ": " << r.status << " " << r.body);
  return parse_json(r.body);
}

// The delivery opens with the per-order key derived from `master` (SPEC §5),
// and that key is the one the license released.
void opens_with(const rapidjson::Value& order, const std::string& master) {
  const auto& delivery = order["delivery"];
  auto order_id = str(order, "orderId");
  auto key = domain::delivery_key(master, order_id);
  BOOST_TEST(str(order["license"], "licenseKey") == crypto::base64_encode(key));
  auto plain = domain::open_delivery(key, str(delivery, "nonce"), str(delivery, "cipherText"),
                                     str(delivery, "aad"));
  BOOST_TEST(str(parse_json(plain), "orderId") == order_id);
}

} // namespace

BOOST_AUTO_TEST_SUITE(delivery_key_versions)

BOOST_AUTO_TEST_CASE(deliveries_name_their_master_key_and_older_ones_still_open) {
  kernel_process kernel;
  auto db = fresh_database("ap_e2e_delivery_keys");
  auto keys_file = write_temp("keys.json", both_keys);
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                         {"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "@" + keys_file}};

  // d2 active: the delivery is sealed with d2's master key and says so.
  std::string order_d2;
  {
    auto with_d2 = env;
    with_d2["ARTIFACT_PUBLISHER_DELIVERY_KID"] = "d2";
    service_process svc{db, with_d2};
    auto doc = checkout(svc, "cust-dkeys-d2");
    order_d2 = str(doc, "orderId");
    BOOST_TEST(str(doc["delivery"], "keyId") == "d2");
    opens_with(doc, key_d2);
    BOOST_TEST(str(read_back(svc, "/api/checkout/" + order_d2 + "/delivery"), "keyId") == "d2");
    // Secrets never show in what the service logged.
    BOOST_TEST(svc.log().find(key_d2) == std::string::npos);
    BOOST_TEST(svc.log().find(key_d1) == std::string::npos);

    // The operator's tool re-derives the key from the master key the
    // delivery names, given the delivery record alone (no license key).
    auto record = write_temp("d2-delivery.json", json::canonical(doc["delivery"]));
    auto [rc, out] = run_cli({"decrypt-delivery", record, "--delivery-keys", "@" + keys_file});
    BOOST_TEST(rc == 0, out);
    BOOST_TEST(out.find("\"orderId\":\"" + order_d2 + "\"") != std::string::npos, out);
    // Without d2 it names the kid it lacks, and never opens it with d1.
    auto [rc_missing, out_missing] =
      run_cli({"decrypt-delivery", record, "--delivery-keys", R"({"d1":")" + key_d1 + R"("})"});
    BOOST_TEST(rc_missing == 1, out_missing);
    BOOST_TEST(out_missing.find("delivery key 'd2'") != std::string::npos, out_missing);
    std::remove(record.c_str());
  }

  // Restarted with d1 active: the d2 order still reads back as d2 and opens
  // with d2's key; a new order is sealed with d1.
  std::string order_d1;
  {
    auto with_d1 = env;
    with_d1["ARTIFACT_PUBLISHER_DELIVERY_KID"] = "d1";
    service_process svc{db, with_d1};
    auto old = read_back(svc, "/api/checkout/" + order_d2);
    BOOST_TEST(str(old["delivery"], "keyId") == "d2");
    opens_with(old, key_d2);
    auto doc = checkout(svc, "cust-dkeys-d1", "dkeys-d1-key");
    order_d1 = str(doc, "orderId");
    BOOST_TEST(str(doc["delivery"], "keyId") == "d1");
    opens_with(doc, key_d1);
  }

  // An order stored before deliveries named their key: its stored result
  // without keyId, exactly as such a service wrote it (canonical JSON).
  {
    persistence::connection pg{db};
    auto stored = parse_json(
      pg.exec("SELECT order_result(result, delivery_ciphertext, ciphertext_at) FROM orders"
              " WHERE order_id = $1",
              {order_d1})
        .value(0, 0));
    stored["delivery"].RemoveMember("keyId");
    // Such a service stored the result whole (before migration 0025).
    pg.exec("UPDATE orders SET result = $2, delivery_ciphertext = NULL, ciphertext_at = NULL"
            " WHERE order_id = $1",
            {order_d1, json::canonical(stored)});
    BOOST_REQUIRE(pg.exec("SELECT result FROM orders WHERE order_id = $1", {order_d1})
                    .value(0, 0)
                    .find("keyId")
                  == std::string::npos);
  }
  // Read by a service whose only key is a lone DELIVERY_KEY, as before.
  service_process svc{db, {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                           {"ARTIFACT_PUBLISHER_DELIVERY_KEY", key_d1}}};
  auto legacy = read_back(svc, "/api/checkout/" + order_d1);
  // Its key replays it with the kid too, as the first answer had it.
  auto replayed = checkout(svc, "cust-dkeys-d1", "dkeys-d1-key");
  BOOST_TEST(str(replayed, "orderId") == order_d1);
  BOOST_TEST(str(replayed["delivery"], "keyId") == "d1");
  BOOST_TEST(str(legacy["delivery"], "keyId") == "d1");
  opens_with(legacy, key_d1);
  BOOST_TEST(str(read_back(svc, "/api/checkout/" + order_d1 + "/delivery"), "keyId") == "d1");
  BOOST_TEST(str(read_back(svc, "/api/checkout/" + order_d2), "orderId") == order_d2);
  // The tool reads a record without keyId as d1 too.
  legacy["delivery"].RemoveMember("keyId");
  auto record = write_temp("legacy-delivery.json", json::canonical(legacy["delivery"]));
  auto [rc, out] = run_cli({"decrypt-delivery", record, "--delivery-keys", "@" + keys_file});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find("\"orderId\":\"" + order_d1 + "\"") != std::string::npos, out);
  std::remove(record.c_str());
  std::remove(keys_file.c_str());
}

BOOST_AUTO_TEST_CASE(a_service_refuses_an_active_delivery_kid_it_does_not_hold) {
  auto [rc, out] = run_cli({"check-config"}, {{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", both_keys},
                                              {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d3"}});
  BOOST_TEST(rc == 2, out);
  BOOST_TEST(out.find("ARTIFACT_PUBLISHER_DELIVERY_KID") != std::string::npos, out);
  BOOST_TEST(out.find(key_d1) == std::string::npos, out);
  auto [ok_rc, ok_out] = run_cli({"check-config"}, {{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", both_keys},
                                                    {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}});
  BOOST_TEST(ok_rc == 0, ok_out);
  BOOST_TEST(ok_out.find("delivery_kid=d2") != std::string::npos, ok_out);
  BOOST_TEST(ok_out.find(key_d2) == std::string::npos, ok_out);
}

BOOST_AUTO_TEST_SUITE_END()

// Audit receipts (SPEC §11) pinned by fixed vectors, each tampering named by
// its check, and how an order shows them.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/receipt.hpp"

using namespace ap;
using namespace ap::domain;

namespace {

// The Kernel's signing seed of the vectors: the bytes 0, 1, …, 31. The
// expected hashes were computed with Python's hashlib and the signatures
// and public key with the OpenSSL command line, outside this project.
std::string vector_seed() {
  std::string seed;
  for (int i = 0; i < 32; ++i)
    seed += static_cast<char>(i);
  return seed;
}
const std::string vector_public_key = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

const std::string first_payload = R"({"orderId":"order_000000000000000000000001","total":2850})";
const std::string first_hash = "c76eef421b682721bb9959d78b698b85017280132549a9df026c3ba1e4452585";
const std::string first_signature =
  "WpFGP2nNY4tEQaKAXvQntg25H66/teebCnNWjZILUuSvRaF+d9LuVgpWrJXFRP3XUwbDhmSc1IWr4Wv0Sy9FBA==";
const std::string second_payload =
  R"({"deliveryId":"dlv_000000000000000000000001","orderId":"order_000000000000000000000001"})";
const std::string second_hash = "7bf2ce39e57662121229a58e14ec71fb5cc03eb3f27a467502dc80e6002fa8a0";
const std::string second_signature =
  "h0hQwvtAkoWvO6hgAZvFoFr/WdXBLC7/la5GIIeWub+qCDBjjrc+FWNu2MjAAedL1G5ljOpmp4DMVFcrs3aSAA==";

signer_keys vector_keys() {
  return {{"kernel-1", crypto::ed25519_verifier{*crypto::base64_decode(vector_public_key)}}};
}

// The receipt of the second event of the vector log.
kernel::audit_ack second_receipt() {
  return {"kae_2", "evt_2", second_hash, first_hash, second_signature, "kernel-1",
          "2026-01-01T00:00:01.000Z"};
}

rapidjson::Document json_of(const std::string& text) {
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict(text, doc));
  return doc;
}

// A stored receipt of `event` (good enough for the order view, which does
// not check signatures).
std::string receipt_for(const audit_event& event) {
  return to_json({event.event_type, {"kae_" + event.event_id, event.event_id,
                                     crypto::sha256_hex(event.payload), "", "sig", "k", "ts"}});
}

} // namespace

BOOST_AUTO_TEST_SUITE(audit_receipts)

BOOST_AUTO_TEST_CASE(the_hash_and_signature_are_pinned_by_fixed_vectors) {
  BOOST_TEST(receipt_hash(first_payload, "").value_or("") == first_hash);
  BOOST_TEST(receipt_hash(second_payload, first_hash).value_or("") == second_hash);
  // prevHash is appended as its 32 bytes, not as its 64 hex characters.
  BOOST_TEST(receipt_hash(second_payload, first_hash).value_or("")
             != crypto::sha256_hex(second_payload + first_hash));
  BOOST_TEST(!receipt_hash(second_payload, "abc"));
  crypto::ed25519_signer kernel{vector_seed()};
  BOOST_TEST(crypto::base64_encode(kernel.public_key()) == vector_public_key);
  BOOST_TEST(crypto::base64_encode(kernel.sign(*crypto::hex_decode(first_hash))) == first_signature);
  BOOST_TEST(crypto::base64_encode(kernel.sign(*crypto::hex_decode(second_hash))) == second_signature);

  kernel::audit_ack first{"kae_1", "evt_1", first_hash, "", first_signature, "kernel-1", "t"};
  BOOST_TEST(to_string(check_receipt(first, "evt_1", first_payload, vector_keys())) == "ok");
  BOOST_TEST(to_string(check_receipt(second_receipt(), "evt_2", second_payload, vector_keys()))
             == "ok");
}

BOOST_AUTO_TEST_CASE(each_tampering_is_named_by_the_check_it_fails) {
  auto keys = vector_keys();
  auto check = [&](const kernel::audit_ack& r, const std::string& payload = second_payload) {
    return std::string{to_string(check_receipt(r, "evt_2", payload, keys))};
  };
  auto r = second_receipt();
  r.event_id = "evt_3";
  BOOST_TEST(check(r) == "event_id_mismatch");
  // The payload sent is not the one the Kernel hashed.
  BOOST_TEST(check(second_receipt(), R"({"deliveryId":"dlv_x","orderId":"order_000000000000000000000001"})")
             == "hash_mismatch");
  r = second_receipt();
  r.hash[0] = r.hash[0] == 'a' ? 'b' : 'a';
  BOOST_TEST(check(r) == "hash_mismatch");
  r = second_receipt();
  r.prev_hash = "";
  BOOST_TEST(check(r) == "hash_mismatch");
  r = second_receipt();
  r.signature = first_signature;  // a real signature, of another hash
  BOOST_TEST(check(r) == "bad_signature");
  r = second_receipt();
  r.signer_id = "kernel-2";
  BOOST_TEST(check(r) == "unknown_signer");
  // Signed by another Kernel key under the same signer id.
  r = second_receipt();
  crypto::ed25519_signer other{std::string(32, '\x09')};
  r.signature = crypto::base64_encode(other.sign(*crypto::hex_decode(second_hash)));
  BOOST_TEST(check(r) == "bad_signature");
  signer_keys others{{"kernel-1", crypto::ed25519_verifier{other.public_key()}}};
  BOOST_TEST(to_string(check_receipt(r, "evt_2", second_payload, others)) == "ok");

  // What a misrouted endpoint might answer: an id and nothing else.
  BOOST_TEST(check({"x", "", "", "", "", "", ""}) == "malformed");
  for (auto mutate : std::vector<void (*)(kernel::audit_ack&)>{
         [](kernel::audit_ack& a) { a.kernel_id.clear(); },
         [](kernel::audit_ack& a) { a.event_id.clear(); },
         [](kernel::audit_ack& a) { a.signer_id.clear(); },
         [](kernel::audit_ack& a) { a.hash = "C" + a.hash.substr(1); },  // upper-case hex
         [](kernel::audit_ack& a) { a.hash.pop_back(); },
         [](kernel::audit_ack& a) { a.prev_hash.pop_back(); },
         [](kernel::audit_ack& a) { a.signature = "not base64"; },
         [](kernel::audit_ack& a) { a.signature = crypto::base64_encode(std::string(63, 'x')); }}) {
    r = second_receipt();
    mutate(r);
    BOOST_TEST(check(r) == "malformed");
  }
  std::vector<std::string> names;
  for (auto c : receipt_failures)
    names.push_back(to_string(c));
  BOOST_TEST(names == (std::vector<std::string>{"malformed", "event_id_mismatch", "hash_mismatch",
                                                "unknown_signer", "bad_signature"}),
             boost::test_tools::per_element());
}

// The forwarder checks a batch's receipts together: each verdict is the one
// check_receipt gives it alone, whatever sits beside it.
BOOST_AUTO_TEST_CASE(receipts_checked_together_answer_as_each_alone) {
  auto keys = vector_keys();
  crypto::ed25519_signer other{std::string(32, '\x09')};
  struct case_ {
    kernel::audit_ack ack;
    std::string event_id, payload, expected;
  };
  std::vector<case_> cases;
  kernel::audit_ack first{"kae_1", "evt_1", first_hash, "", first_signature, "kernel-1", "t"};
  cases.push_back({first, "evt_1", first_payload, "ok"});
  auto r = second_receipt();
  r.signature = first_signature;
  cases.push_back({r, "evt_2", second_payload, "bad_signature"});
  cases.push_back({second_receipt(), "evt_2", second_payload, "ok"});
  r = second_receipt();
  r.signature = crypto::base64_encode(other.sign(*crypto::hex_decode(second_hash)));
  cases.push_back({r, "evt_2", second_payload, "bad_signature"});
  cases.push_back({second_receipt(), "evt_3", second_payload, "event_id_mismatch"});
  cases.push_back({second_receipt(), "evt_2", first_payload, "hash_mismatch"});
  r = second_receipt();
  r.signer_id = "kernel-2";
  cases.push_back({r, "evt_2", second_payload, "unknown_signer"});
  cases.push_back({{"x", "", "", "", "", "", ""}, "evt_2", second_payload, "malformed"});
  cases.push_back({first, "evt_1", first_payload, "ok"});

  std::vector<receipt_to_check> batch;
  for (const auto& c : cases)
    batch.push_back({&c.ack, c.event_id, c.payload});
  auto verdicts = check_receipts(batch, keys);
  BOOST_REQUIRE(verdicts.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    BOOST_TEST_CONTEXT("case " << i) {
      BOOST_TEST(to_string(verdicts[i]) == cases[i].expected);
      BOOST_TEST(to_string(verdicts[i])
                 == to_string(check_receipt(cases[i].ack, cases[i].event_id, cases[i].payload, keys)));
    }
  }
  BOOST_TEST(check_receipts({}, keys).empty());
}

BOOST_AUTO_TEST_CASE(a_receipt_reads_back_from_its_canonical_json) {
  audit_receipt r{"delivery.generated", second_receipt()};
  auto text = to_json(r);
  BOOST_TEST(text
             == R"({"eventId":"evt_2","eventType":"delivery.generated","hash":")" + second_hash
                  + R"(","kernelEventId":"kae_2","prevHash":")" + first_hash + R"(","signature":")"
                  + second_signature + R"(","signerId":"kernel-1","ts":"2026-01-01T00:00:01.000Z"})");
  auto doc = json_of(text);
  BOOST_TEST(json::canonical(doc) == text);
  auto back = receipt_from_json(doc);
  BOOST_REQUIRE(back);
  BOOST_TEST(to_json(*back) == text);
  doc.RemoveMember("signerId");
  BOOST_TEST(!receipt_from_json(doc));
  BOOST_TEST(!receipt_from_json(json_of("[]")));
}

// Only the first eight signers keep tables (165 KB each); a receipt checks
// the same under every signer, tabled or not.
BOOST_AUTO_TEST_CASE(a_receipt_kept_in_columns_gives_back_its_canonical_json) {
  // The vector receipts: the second has a previous hash, the first none.
  auto second = audit_receipt{"delivery.generated", second_receipt()};
  auto first = audit_receipt{"order.completed", {"kae_1", "evt_1", first_hash, "", first_signature,
                                                 "kernel-1", "2026-01-01T00:00:00.000Z"}};
  for (const auto& r : {first, second}) {
    auto columns = receipt_in_columns(r);
    BOOST_REQUIRE(columns);
    BOOST_TEST(columns->hash.size() == 32u);
    BOOST_TEST(columns->signature.size() == 64u);
    BOOST_TEST(columns->prev_hash.size() == (r.ack.prev_hash.empty() ? 0u : 32u));
    BOOST_TEST(to_json(receipt_of_columns(r.ack.event_id, r.event_type, *columns)) == to_json(r));
  }
  BOOST_TEST(receipt_in_columns(first)->hash == *crypto::hex_decode(first_hash));
  BOOST_TEST(receipt_in_columns(first)->signature == *crypto::base64_decode(first_signature));
  // Kernel ids, signers and times as the Kernel may write them, any
  // printable ASCII but the two characters JSON escapes.
  auto odd = second;
  odd.ack.kernel_id = "kae/2 ~{x}";
  odd.ack.ts = "";
  odd.ack.signer_id = "k!";
  BOOST_REQUIRE(receipt_in_columns(odd));
  BOOST_TEST(to_json(receipt_of_columns("evt_2", odd.event_type, *receipt_in_columns(odd)))
             == to_json(odd));
}

BOOST_AUTO_TEST_CASE(a_receipt_its_columns_would_change_is_kept_as_its_text) {
  auto upper = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
  };
  const std::vector<std::pair<std::string, void (*)(kernel::audit_ack&)>> cases{
    {"an upper-case hash", [](kernel::audit_ack& a) { a.hash = "C" + a.hash.substr(1); }},
    {"a hash that is not hex", [](kernel::audit_ack& a) { a.hash = "sha256:" + a.hash; }},
    {"a previous hash of odd length", [](kernel::audit_ack& a) { a.prev_hash.pop_back(); }},
    {"base64 without its padding",
     [](kernel::audit_ack& a) { a.signature = a.signature.substr(0, a.signature.size() - 2); }},
    {"base64 in lines", [](kernel::audit_ack& a) { a.signature.insert(76, "\n"); }},
    {"the URL alphabet", [](kernel::audit_ack& a) {
       std::replace(a.signature.begin(), a.signature.end(), '+', '-');
       std::replace(a.signature.begin(), a.signature.end(), '/', '_');
     }},
    {"trailing bits set", [](kernel::audit_ack& a) { a.signature[a.signature.size() - 3] = 'B'; }},
    {"a quote in the Kernel's id", [](kernel::audit_ack& a) { a.kernel_id = "kae_\"2"; }},
    {"a backslash in the signer", [](kernel::audit_ack& a) { a.signer_id = "k\\1"; }},
    {"a tab in the time", [](kernel::audit_ack& a) { a.ts += "\t"; }},
    {"a character outside ASCII in the time", [](kernel::audit_ack& a) { a.ts += "\xc3\xa9"; }},
    {"a control character in the event's id", [](kernel::audit_ack& a) { a.event_id += "\x7f"; }},
  };
  for (const auto& [name, change] : cases) {
    BOOST_TEST_CONTEXT(name) {
      auto r = audit_receipt{"delivery.generated", second_receipt()};
      change(r.ack);
      BOOST_TEST(!receipt_in_columns(r));
    }
  }
  // The case of the hash and of the previous hash too.
  auto r = audit_receipt{"delivery.generated", second_receipt()};
  r.ack.prev_hash = upper(r.ack.prev_hash);
  BOOST_TEST(!receipt_in_columns(r));
  // And the event's type, which the row keeps.
  r = audit_receipt{"delivery \"generated\"", second_receipt()};
  BOOST_TEST(!receipt_in_columns(r));
}

BOOST_AUTO_TEST_CASE(only_the_first_signers_keep_tables_and_every_signer_checks) {
  std::vector<kernel::signer_key> published;
  for (int i = 0; i < 11; ++i)
    published.push_back({"kernel-" + std::to_string(i), *crypto::base64_decode(vector_public_key)});
  published.push_back({"kernel-3", *crypto::base64_decode(vector_public_key)}); // repeated
  auto keys = keys_by_signer(published);
  BOOST_REQUIRE(keys.size() == 11u);
  int tabled = 0;
  for (const auto& signer : published) {
    BOOST_TEST_CONTEXT(signer.signer_id) {
      const auto& verifier = keys.at(signer.signer_id);
      BOOST_TEST(verifier.tabled() == (signer.signer_id.size() == 8 && signer.signer_id < "kernel-8"));
      auto r = second_receipt();
      r.signer_id = signer.signer_id;
      BOOST_TEST(to_string(check_receipt(r, "evt_2", second_payload, keys)) == "ok");
      r.signature = first_signature;
      BOOST_TEST(to_string(check_receipt(r, "evt_2", second_payload, keys)) == "bad_signature");
    }
  }
  for (const auto& [signer, verifier] : keys)
    tabled += verifier.tabled();
  BOOST_TEST(tabled == 8); // kernel-0 .. kernel-7
}

BOOST_AUTO_TEST_CASE(the_kernel_keys_document_is_read_and_unusable_entries_left_out) {
  auto keys = parse_kernel_keys(
    R"({"signers":[{"signerId":"kernel-1","algorithm":"ed25519","publicKey":")" + vector_public_key
    + R"("},{"signerId":"rsa","algorithm":"rsa","publicKey":")" + vector_public_key
    + R"("},{"signerId":"short","algorithm":"ed25519","publicKey":"AAAA"}]})");
  BOOST_REQUIRE(keys);
  BOOST_REQUIRE(keys->size() == 1u);
  BOOST_TEST((*keys)[0].signer_id == "kernel-1");
  BOOST_TEST((keys_by_signer(*keys) == vector_keys()));
  BOOST_TEST(parse_kernel_keys(R"({"signers":[]})")->empty());
  BOOST_TEST(!parse_kernel_keys(R"({"keys":[]})"));
  BOOST_TEST(!parse_kernel_keys("not json"));
}

BOOST_AUTO_TEST_CASE(an_order_reads_delivered_once_every_event_has_a_receipt) {
  // A stored result as the checkout writes it (the members that matter here).
  const std::string stored =
    R"({"audit":{"eventId":"evt_c","status":"pending"},"orderId":"order_1","status":"completed","total":1})";
  const audit_event completed{"evt_c", "order.completed", R"({"orderId":"order_1"})"};
  const audit_event generated{"evt_d", "delivery.generated", R"({"orderId":"order_1","x":1})"};
  auto audit_of = [](const std::string& view) {
    auto doc = json_of(view);
    BOOST_REQUIRE(doc["audit"].IsObject());
    return json::canonical(doc["audit"]);
  };
  auto none = result_with_receipts(stored, order_status::completed, {});
  BOOST_TEST(audit_of(none) == R"({"eventId":"evt_c","receipts":[],"status":"pending"})");
  // Everything else is the stored result as it was.
  BOOST_TEST(none == R"({"audit":{"eventId":"evt_c","receipts":[],"status":"pending"},)"
                     R"("orderId":"order_1","status":"completed","total":1})");

  auto one = result_with_receipts(stored, order_status::completed, {receipt_for(generated)});
  BOOST_TEST(audit_of(one) == R"({"eventId":"evt_c","receipts":[)" + receipt_for(generated)
                                + R"(],"status":"pending"})");
  // Both, whatever order they were stored in, shown in the order's own.
  auto both = result_with_receipts(stored, order_status::completed,
                                   {receipt_for(generated), receipt_for(completed)});
  BOOST_TEST(audit_of(both) == R"({"eventId":"evt_c","receipts":[)" + receipt_for(completed) + ","
                                 + receipt_for(generated) + R"(],"status":"delivered"})");

  const audit_event declined{"evt_c", "order.payment_failed", R"({"orderId":"order_1"})"};
  BOOST_TEST(audit_of(result_with_receipts(stored, order_status::payment_failed,
                                           {receipt_for(declined)}))
               .find(R"("status":"delivered")")
             != std::string::npos);
  // A receipt of another kind of event does not stand in for the order's own.
  BOOST_TEST(audit_of(result_with_receipts(stored, order_status::settlement_failed,
                                           {receipt_for(completed)}))
               .find(R"("status":"pending")")
             != std::string::npos);
  BOOST_CHECK_THROW(result_with_receipts("[]", order_status::completed, {}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

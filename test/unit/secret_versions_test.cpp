// What a secret-rotation names (SPEC §12) and the shared holder of the
// active version of each set.
#include <boost/test/unit_test.hpp>

#include "domain/secret_commitment.hpp"
#include "domain/secret_versions.hpp"

using namespace ap::domain;

BOOST_AUTO_TEST_SUITE(secret_versions_)

BOOST_AUTO_TEST_CASE(a_rotation_version_names_its_set_and_kid) {
  auto t = rotation_target_of("delivery:d2");
  BOOST_REQUIRE(t.has_value());
  BOOST_TEST((t->set == secret_set::delivery));
  BOOST_TEST(t->kid == "d2");
  BOOST_TEST((rotation_target_of("kernel-token:t2")->set == secret_set::kernel_token));
  BOOST_TEST((rotation_target_of("stripe:s.2_b-3")->set == secret_set::stripe));
  // A bare kid, and proof:, are the proof set.
  BOOST_TEST((rotation_target_of("v2")->set == secret_set::proof));
  BOOST_TEST(rotation_target_of("proof:v2")->kid == "v2");
  // Reported as the instances report their versions.
  BOOST_TEST(reported_name(*rotation_target_of("proof:v2")) == "v2");
  BOOST_TEST(reported_name(*rotation_target_of("delivery:d2")) == "delivery:d2");
  for (const char* bad : {"", "vault:k1", "delivery:", ":d2", "delivery:d 2", "delivery:d2:x",
                          "Delivery:d2"})
    BOOST_TEST(!rotation_target_of(bad).has_value(), bad);
  BOOST_TEST(rotation_target_of("delivery:" + std::string(64, 'k')).has_value());
  BOOST_TEST(!rotation_target_of("delivery:" + std::string(65, 'k')).has_value());
}

BOOST_AUTO_TEST_CASE(the_active_version_moves_only_to_a_configured_one) {
  secret_versions v;
  BOOST_TEST(!v.active(secret_set::delivery).has_value());
  v.add(secret_set::delivery, "d1", "key-one", "c1");
  v.add(secret_set::delivery, "d2", "key-two", "c2");
  v.add(secret_set::stripe, "s1", "sk_test_one", "c3");
  BOOST_TEST(v.active(secret_set::delivery)->kid == "d1");  // the first added
  BOOST_TEST(v.activate(secret_set::delivery, "d2"));
  BOOST_TEST(v.active(secret_set::delivery)->value == "key-two");
  BOOST_TEST(!v.activate(secret_set::delivery, "d9"));
  BOOST_TEST(!v.activate(secret_set::kernel_token, "t1"));
  BOOST_TEST(v.active(secret_set::delivery)->kid == "d2");
  BOOST_TEST(v.active(secret_set::stripe)->kid == "s1");
  BOOST_TEST(*v.commitment(secret_set::delivery, "d1") == "c1");
  BOOST_TEST(!v.commitment(secret_set::stripe, "d1").has_value());
  // Commitments only, never a value.
  BOOST_TEST(v.key_set_members()
             == R"("delivery:d1":"c1","delivery:d2":"c2","stripe:s1":"c3")");
}

BOOST_AUTO_TEST_SUITE_END()

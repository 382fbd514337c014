#include <boost/test/unit_test.hpp>

#include "core/metrics.hpp"

using namespace ap::metrics;

BOOST_AUTO_TEST_SUITE(metrics_registry)

BOOST_AUTO_TEST_CASE(counters_render_with_labels) {
  registry r;
  r.get_counter("ap_requests_total", "Requests", {{"route", "/x"}, {"status", "200"}}).inc(3);
  r.get_counter("ap_requests_total", "Requests", {{"route", "/x"}, {"status", "200"}}).inc();
  auto text = r.render();
  BOOST_TEST(text.find("# HELP ap_requests_total Requests\n") != std::string::npos);
  BOOST_TEST(text.find("# TYPE ap_requests_total counter\n") != std::string::npos);
  BOOST_TEST(text.find("ap_requests_total{route=\"/x\",status=\"200\"} 4\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(histograms_are_cumulative) {
  registry r;
  auto& h = r.get_histogram("ap_latency_seconds", "Latency", {{"route", "/y"}}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  auto text = r.render();
  BOOST_TEST(text.find("ap_latency_seconds_bucket{route=\"/y\",le=\"0.1\"} 1\n")
             != std::string::npos);
  BOOST_TEST(text.find("ap_latency_seconds_bucket{route=\"/y\",le=\"1\"} 2\n")
             != std::string::npos);
  BOOST_TEST(text.find("ap_latency_seconds_bucket{route=\"/y\",le=\"+Inf\"} 3\n")
             != std::string::npos);
  BOOST_TEST(text.find("ap_latency_seconds_count{route=\"/y\"} 3\n") != std::string::npos);
  BOOST_TEST(text.find("ap_latency_seconds_sum{route=\"/y\"} 5.55\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(label_values_are_escaped) {
  BOOST_TEST(render_labels({{"a", "x\"y\\z\n"}}) == "a=\"x\\\"y\\\\z\\n\"");
}

BOOST_AUTO_TEST_CASE(gauges_and_callbacks_render_once_each) {
  registry r;
  r.get_gauge("ap_open", "Open", {{"k", "a"}}).set(2);
  r.add_callback_gauge("ap_open", "Open", {{"k", "b"}}, [] { return 7.0; });
  auto text = r.render();
  BOOST_TEST(text.find("ap_open{k=\"a\"} 2\n") != std::string::npos);
  BOOST_TEST(text.find("ap_open{k=\"b\"} 7\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(one_name_cannot_have_two_types) {
  registry r;
  r.get_counter("ap_thing", "x");
  BOOST_CHECK_THROW(r.get_gauge("ap_thing", "x"), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()

#include "mocks/payments.hpp"

BOOST_AUTO_TEST_SUITE(mock_memory)

// The payment and ledger mocks keep a bounded window of recent results, so
// the service's memory stays flat over any number of checkouts.
BOOST_AUTO_TEST_CASE(recent_results_forget_the_oldest_beyond_capacity) {
  ap::mocks::recent<int> r{3};
  for (int i = 0; i < 5; ++i)
    r.remember("k" + std::to_string(i), i);
  BOOST_TEST(r.size() == 3u);
  BOOST_TEST(!r.find("k0"));
  BOOST_TEST(!r.find("k1"));
  BOOST_REQUIRE(r.find("k4"));
  BOOST_TEST(*r.find("k4") == 4);
  // Remembering a key again keeps the first value and takes no new room.
  r.remember("k4", 40);
  BOOST_TEST(*r.find("k4") == 4);
  BOOST_TEST(r.size() == 3u);
  BOOST_TEST(r.find("k2"));
}

BOOST_AUTO_TEST_SUITE_END()

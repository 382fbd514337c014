#include <boost/test/unit_test.hpp>

#include "http/wire.hpp"

using ap::http::wire::head;
using ap::http::wire::status_has_no_body;

BOOST_AUTO_TEST_SUITE(wire)

BOOST_AUTO_TEST_CASE(a_response_head_is_its_lines_in_order_and_an_empty_line) {
  auto text = head{11, 201, "Created"}
                .field("Content-Type", "application/json")
                .field("X-Request-Id", "r-1")
                .content_length(42)
                .finish();
  BOOST_TEST(text
             == "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: r-1\r\n"
                "Content-Length: 42\r\n\r\n");
  auto one_oh = head{10, 200, "OK"}.connection("keep-alive").finish();
  BOOST_TEST(one_oh == "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_request_head_starts_with_its_request_line) {
  auto text = head{"POST", "/kernel/audit"}.field("Host", "127.0.0.1").content_length(0).finish();
  BOOST_TEST(text == "POST /kernel/audit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(the_body_follows_the_head_in_the_same_string) {
  auto text = head{11, 200, "OK"}.content_length(7).finish(R"({"a":1})");
  BOOST_TEST(text == "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
}

BOOST_AUTO_TEST_CASE(callers_cannot_write_the_framing_fields) {
  auto text = head{11, 200, "OK"}
                .field("content-length", "5")
                .field("Transfer-Encoding", "chunked")
                .field("CONNECTION", "close")
                .field("Allow", "GET")
                .content_length(2)
                .finish();
  BOOST_TEST(text == "HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 2\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(nothing_a_line_carries_can_start_another) {
  using namespace std::string_literals;
  auto text = head{"GET", "/a\r\nX-Injected: 1\r\n"}
                .field("X-Name", "v\r\nContent-Length: 0"s + '\0' + "!")
                .finish();
  BOOST_TEST(text == "GET /aX-Injected: 1 HTTP/1.1\r\nX-Name: vContent-Length: 0!\r\n\r\n");
  auto response = head{11, 200, "O\nK"}.finish();
  BOOST_TEST(response == "HTTP/1.1 200 OK\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_name_that_is_not_a_token_is_not_written) {
  auto text = head{11, 200, "OK"}
                .field("Content-Length ", "5")
                .field("Transfer-Encoding:", "chunked")
                .field("X-Name\r\nX-Evil", "1")
                .field("X Y", "1")
                .field("", "1")
                .field("X-Fine_1.0~", "1")
                .finish();
  BOOST_TEST(text == "HTTP/1.1 200 OK\r\nX-Fine_1.0~: 1\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(a_name_written_once_stands) {
  auto text = head{"POST", "/x"}
                .field("Host", "kernel")
                .field("Content-Type", "application/json")
                .field("host", "elsewhere")
                .field("CONTENT-TYPE", "text/plain")
                .field("Authorization", "Bearer t")
                .finish();
  BOOST_TEST(text
             == "POST /x HTTP/1.1\r\nHost: kernel\r\nContent-Type: application/json\r\n"
                "Authorization: Bearer t\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(the_status_line_names_the_version_it_is_given) {
  auto one_oh = head{10, 404, "Not Found"}.finish();
  BOOST_TEST(one_oh == "HTTP/1.0 404 Not Found\r\n\r\n");
  auto one_two = head{12, 200, "OK"}.finish();
  BOOST_TEST(one_two == "HTTP/1.2 200 OK\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(informational_no_content_and_not_modified_carry_no_body) {
  for (int status : {100, 101, 199, 204, 304})
    BOOST_TEST(status_has_no_body(status), status);
  for (int status : {200, 201, 202, 205, 301, 400, 404, 500, 503})
    BOOST_TEST(!status_has_no_body(status), status);
}

BOOST_AUTO_TEST_SUITE_END()

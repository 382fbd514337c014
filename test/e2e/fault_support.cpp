#include "test/e2e/fault_support.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace std::chrono_literals;

namespace ap::test {

steady_load::steady_load(std::uint16_t port, std::string tag, int clients, bool keyed,
                         bool retry_in_doubt) {
  for (int c = 0; c < clients; ++c)
    threads_.emplace_back([this, port, tag, c, keyed, retry_in_doubt] {
      for (int i = 0; running_; ++i) {
        auto customer = tag + "-" + std::to_string(c) + "-" + std::to_string(i);
        std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
        if (keyed)
          headers.push_back({"Idempotency-Key", customer});
        const auto body = R"({"customerId":")" + customer
                          + R"(","email":"f@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1},{"sku":"artifact-license","quantity":2}]})";
        for (;;) {
          auto started = std::chrono::steady_clock::now();
          auto r = http_call(port, "POST", "/api/checkout", headers, body);
          outcome o;
          if (keyed) {
            o.key = customer;
            o.body = body;
          }
          o.status = r.complete ? r.status : 0;
          o.at = std::chrono::steady_clock::now();
          o.latency = std::chrono::duration_cast<std::chrono::milliseconds>(o.at - started);
          if (o.status == 201) {
            o.order_id = parse_json(r.body)["orderId"].GetString();
          } else if (o.status != 0) {
            auto doc = parse_json(r.body);  // every error is JSON
            o.error = doc.HasMember("error") && doc["error"].IsString() ? doc["error"].GetString() : "?";
            // SPEC §9: an answer after the order id was assigned names it.
            if (doc.HasMember("orderId") && doc["orderId"].IsString())
              o.order_id = doc["orderId"].GetString();
          }
          {
            std::lock_guard<std::mutex> guard{mutex_};
            outcomes_.push_back(o);
          }
          bool in_doubt = o.status == 0 || o.status == 409 || o.status >= 500;
          if (!(keyed && retry_in_doubt && in_doubt) || !running_) {
            if (o.status == 0)
              std::this_thread::sleep_for(20ms);  // refused while down: do not spin
            break;
          }
          std::this_thread::sleep_for(100ms);
        }
      }
    });
}

steady_load::~steady_load() { stop(); }

void steady_load::stop() {
  running_ = false;
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
}

std::vector<outcome> steady_load::outcomes() {
  std::lock_guard<std::mutex> guard{mutex_};
  return outcomes_;
}

std::size_t steady_load::acknowledged() {
  std::lock_guard<std::mutex> guard{mutex_};
  return static_cast<std::size_t>(
    std::count_if(outcomes_.begin(), outcomes_.end(), [](const auto& o) { return o.status == 201; }));
}

bool steady_load::wait_for_more(std::size_t n, std::chrono::seconds limit) {
  auto target = acknowledged() + n;
  auto until = std::chrono::steady_clock::now() + limit;
  while (acknowledged() < target) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

mixed_load::mixed_load(std::uint16_t port, const std::string& tag)
  : keyless(port, tag + "-nokey", 2, false), keyed(port, tag + "-key", 2, true, true) {}

std::vector<outcome> mixed_load::stop() {
  keyless.stop();
  keyed.stop();
  auto all = keyless.outcomes();
  auto more = keyed.outcomes();
  all.insert(all.end(), more.begin(), more.end());
  return all;
}

void lock_orders_for(const std::string& db_url, std::chrono::seconds how_long) {
  persistence::connection locker{db_url};
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE");
  std::this_thread::sleep_for(how_long);
  locker.exec("COMMIT");
}

void terminate_other_connections(persistence::connection& admin) {
  // Client connections only: an autovacuum worker in the database is a
  // superuser process, which this role may not signal.
  admin.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE datname = current_database() AND pid <> pg_backend_pid()"
             " AND backend_type = 'client backend'");
}

std::string count(persistence::connection& db, const std::string& sql) {
  return db.exec(sql).value(0, 0);
}

std::string wait_until_finished(persistence::connection& db, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  std::string left;
  for (;;) {
    left = db.exec("SELECT count(*) FROM unfinished_checkouts").value(0, 0);
    if (left == "0" || std::chrono::steady_clock::now() > until)
      return left;
    std::this_thread::sleep_for(100ms);
  }
}

double metric(std::uint16_t port, const std::string& name) {
  auto text = http_call(port, "GET", "/metrics").body;
  auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0.0 : std::stod(text.substr(at + name.size() + 2));
}

void check_invariants(const std::string& db_url, std::uint16_t kernel_port,
                      const std::vector<outcome>& outcomes) {
  persistence::connection db{db_url};

  // SPEC §9: nothing stays unfinished once the reconciler has had its turn,
  // and an order named by an error answer is either finished whole or was
  // never recorded (the error came before anything external happened).
  BOOST_TEST(wait_until_finished(db, 30s) == "0", "checkouts left unfinished");
  for (const auto& o : outcomes)
    if (o.status >= 500)
      BOOST_TEST(!o.order_id.empty(), "a " << o.status << " " << o.error << " names no order");

  // Every 201 is an order in PostgreSQL, completed, with both its events.
  std::set<std::string> acknowledged;
  for (const auto& o : outcomes)
    if (o.status == 201)
      acknowledged.insert(o.order_id);
  BOOST_REQUIRE(!acknowledged.empty());
  std::map<std::string, int> events_per_order;
  {
    auto rows = db.exec(std::string("SELECT o.order_id, o.status, count(e.event_id) FROM orders o"
                                    " LEFT JOIN ") + audit_events_sql
                        + " e ON e.order_id = o.order_id GROUP BY 1, 2");
    for (int i = 0; i < rows.rows(); ++i) {
      events_per_order[rows.value(i, 0)] = std::stoi(rows.value(i, 2));
      // Orders whose answer was lost (the process died first) exist too:
      // each is still whole.
      BOOST_TEST(rows.value(i, 1) == "completed", rows.value(i, 0));
    }
  }
  std::size_t missing = 0;
  for (const auto& id : acknowledged) {
    auto it = events_per_order.find(id);
    if (it == events_per_order.end()) {
      ++missing;
      BOOST_ERROR("acknowledged order " << id << " is not in PostgreSQL");
    } else {
      BOOST_TEST(it->second == 2, id << " has " << it->second << " audit events");
    }
  }
  BOOST_TEST(missing == 0u);
  BOOST_TEST(count(db, std::string("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM ")
                         + audit_events_sql + " e WHERE e.order_id = o.order_id)") == "0");

  // No order without its payment and its ledger entry: the columns are set
  // and agree with the stored result document.
  {
    auto rows = db.exec("SELECT order_id, payment_id, finance_entry_id,"
                        " order_result(result, delivery_ciphertext, ciphertext_at) FROM orders");
    for (int i = 0; i < rows.rows(); ++i) {
      BOOST_TEST(!rows.is_null(i, 2), rows.value(i, 0) << " has no ledger entry");
      auto result = parse_json(rows.value(i, 3));
      BOOST_TEST(std::string{result["payment"]["paymentId"].GetString()} == rows.value(i, 1));
      BOOST_TEST(std::string{result["payment"]["status"].GetString()} == "captured");
      BOOST_TEST(std::string{result["finance"]["entryId"].GetString()} == rows.value(i, 2));
      BOOST_TEST(result["finance"]["credit"].GetInt64() == result["total"].GetInt64());
    }
  }

  // The outbox drains, and the Kernel holds every event exactly once.
  std::string pending = "?";
  for (int i = 0; i < 300 && pending != "0"; ++i) {
    pending = count(db, "SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL");
    if (pending != "0")
      std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE_MESSAGE(pending == "0", pending << " events never reached the Kernel");
  auto verify = parse_json(http_call(kernel_port, "GET", "/kernel/audit/verify").body);
  BOOST_TEST(verify["valid"].GetBool());
  // Each delivered event left the outbox for its receipt.
  auto events = std::stoull(count(db, "SELECT count(*) FROM audit_receipts"));
  BOOST_TEST(verify["length"].GetUint64() == events, "the Kernel log holds "
               << verify["length"].GetUint64() << " events, the receipts " << events);
  auto rows = db.exec("SELECT order_id FROM orders");
  for (int i = 0; i < rows.rows(); ++i) {
    auto found = parse_json(http_call(kernel_port, "POST", "/kernel/audit/search",
                                      {{"Content-Type", "application/json"}},
                                      R"({"criteria":{"orderId":")" + rows.value(i, 0)
                                        + R"("},"limit":10})")
                              .body);
    std::map<std::string, int> types;
    for (const auto& e : found["results"].GetArray())
      ++types[e["eventType"].GetString()];
    BOOST_TEST(types["order.completed"] == 1, rows.value(i, 0));
    BOOST_TEST(types["delivery.generated"] == 1, rows.value(i, 0));
  }
  BOOST_TEST_MESSAGE(acknowledged.size() << " acknowledged, " << rows.rows() << " stored, "
                                         << events << " events delivered once");
}

std::vector<std::chrono::milliseconds> latencies_of_201(const std::vector<outcome>& outcomes) {
  std::vector<std::chrono::milliseconds> out;
  for (const auto& o : outcomes)
    if (o.status == 201)
      out.push_back(o.latency);
  std::sort(out.begin(), out.end());
  return out;
}


std::size_t check_processor_invariants(const std::string& db_url, std::uint16_t processor_port) {
  persistence::connection db{db_url};
  auto records = read_processor_records(processor_port);
  auto refunded = records.refunded();
  // The orders by the charge they name, with their status.
  std::map<std::string, std::vector<std::string>> orders_of;
  auto rows = db.exec("SELECT payment_id, status, order_id FROM orders WHERE payment_id IS NOT NULL");
  for (int i = 0; i < rows.rows(); ++i)
    orders_of[rows.value(i, 0)].push_back(rows.value(i, 1));
  std::map<std::string, const processor_records::intent*> intents;
  for (const auto& pi : records.intents)
    intents[pi.id] = &pi;
  std::size_t unrefunded = 0;
  for (const auto& pi : records.intents) {
    if (pi.status != "succeeded")
      continue;
    auto back = refunded.count(pi.id) ? refunded.at(pi.id) : 0;
    const auto& named = orders_of[pi.id];
    if (back >= pi.amount_received) {
      // Refunded whole: no completed order may name it.
      for (const auto& status : named)
        BOOST_TEST(status != "completed", pi.id << " is refunded but its order is completed");
      continue;
    }
    ++unrefunded;
    BOOST_TEST(back == 0, pi.id << " is partly refunded");
    BOOST_TEST(named.size() == 1u, pi.id << " (order " << pi.order_id << ") is named by "
                                          << named.size() << " orders");
    if (named.size() == 1)
      BOOST_TEST(named.front() == "completed", pi.id << " belongs to a " << named.front() << " order");
  }
  // Every completed order's charge exists, succeeded, and was never undone.
  auto completed = db.exec("SELECT order_id, payment_id, total FROM orders WHERE status = 'completed'");
  for (int i = 0; i < completed.rows(); ++i) {
    auto it = intents.find(completed.value(i, 1));
    BOOST_REQUIRE_MESSAGE(it != intents.end(), completed.value(i, 0) << " names an unknown charge "
                                                                     << completed.value(i, 1));
    BOOST_TEST(it->second->status == "succeeded", completed.value(i, 0));
    BOOST_TEST(it->second->amount_received == std::stoll(completed.value(i, 2)), completed.value(i, 0));
    BOOST_TEST(refunded.count(it->first) == 0u, completed.value(i, 0) << "'s charge was refunded");
  }
  auto settled_failed = db.exec("SELECT order_id, payment_id FROM orders WHERE status = 'settlement_failed'");
  for (int i = 0; i < settled_failed.rows(); ++i) {
    auto it = intents.find(settled_failed.value(i, 1));
    BOOST_REQUIRE(it != intents.end());
    BOOST_TEST(refunded[it->first] == it->second->amount_received, settled_failed.value(i, 0));
  }
  BOOST_TEST(unrefunded == static_cast<std::size_t>(completed.rows()),
             unrefunded << " unrefunded charges for " << completed.rows() << " completed orders");
  BOOST_TEST_MESSAGE(records.intents.size() << " payment intents at the processor, " << unrefunded
                                            << " unrefunded, " << records.refunds.size() << " refunds");
  return unrefunded;
}

std::map<std::string, std::string> stripe_env(const payments_process& processor,
                                              const kernel_process& kernel,
                                              const std::string& request_timeout_ms,
                                              const std::string& reconcile_after_ms) {
  return {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
          {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
          {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", processor.url()},
          {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", payments_process::secret_key},
          {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", request_timeout_ms},
          {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", reconcile_after_ms}};
}

// Follows an order named by an answer in doubt until it is final. A read
// the service could not answer in time (503, 504; a loaded host) is not an
// answer about the order: it is asked again.
http_reply final_state(std::uint16_t port, const std::string& order_id) {
  http_reply got;
  for (int i = 0; i < 200; ++i) {
    got = http_call(port, "GET", "/api/checkout/" + order_id);
    if (got.status != 202 && got.status != 503 && got.status != 504)
      break;
    std::this_thread::sleep_for(100ms);
  }
  return got;
}

// Every order named by an answer that was not final ends completed, or was
// never recorded and then nothing was charged for it.
doubts_followed follow_doubts(std::uint16_t port, std::uint16_t processor_port,
                              const std::vector<outcome>& outcomes) {
  doubts_followed out;
  std::vector<std::string> unrecorded;
  for (const auto& o : outcomes) {
    if (o.status == 201 || o.status == 0 || o.status == 409)
      continue;
    BOOST_TEST((o.status == 502 || o.status == 503 || o.status == 504), o.status << " " << o.error);
    BOOST_REQUIRE_MESSAGE(!o.order_id.empty(), o.status << " " << o.error << " names no order");
    auto got = final_state(port, o.order_id);
    if (got.status == 404) {
      ++out.never_recorded;
      unrecorded.push_back(o.order_id);
      continue;
    }
    BOOST_TEST(got.status == 200, o.order_id << ": " << got.status);
    if (got.status == 200) {
      BOOST_TEST(std::string{parse_json(got.body)["status"].GetString()} == "completed");
      ++out.completed;
    }
  }
  std::set<std::string> charged_orders;
  for (const auto& pi : read_processor_records(processor_port).intents)
    charged_orders.insert(pi.order_id);
  // An order not found when first asked may still have been recorded after
  // its answer (the checkout goes on past its deadline); if it was charged,
  // it must end completed (SPEC §9: no charge without its order).
  for (const auto& id : unrecorded) {
    if (charged_orders.count(id) == 0u)
      continue;
    http_reply got;
    for (int i = 0; i < 100; ++i) {
      got = final_state(port, id);
      if (got.status == 200)
        break;
      std::this_thread::sleep_for(200ms);
    }
    BOOST_TEST(got.status == 200, id << " was charged but has no order: " << got.status);
    if (got.status == 200) {
      BOOST_TEST(std::string{parse_json(got.body)["status"].GetString()} == "completed");
      --out.never_recorded;
      ++out.completed;
    }
  }
  return out;
}

std::size_t settle_keyed_doubts(std::uint16_t port, const std::vector<outcome>& outcomes) {
  // The last answer per key: a careful client stopped while in doubt.
  std::map<std::string, const outcome*> last;
  for (const auto& o : outcomes)
    if (!o.key.empty())
      last[o.key] = &o;
  std::size_t settled = 0;
  for (const auto& [key, o] : last) {
    if (o->status == 201)
      continue;
    http_reply got;
    for (int i = 0; i < 100; ++i) {
      got = http_call(port, "POST", "/api/checkout",
                      {{"Content-Type", "application/json"}, {"Idempotency-Key", key}}, o->body);
      if (got.complete && got.status != 409 && got.status < 500)
        break;
      std::this_thread::sleep_for(200ms);
    }
    BOOST_TEST(got.status == 201, key << ": " << got.status << " " << got.body);
    if (got.status != 201)
      continue;
    ++settled;
    // The order the answer in doubt named is the one replayed, unless it
    // was never recorded (its record gave up), and then never charged.
    auto order_id = std::string{parse_json(got.body)["orderId"].GetString()};
    if (!o->order_id.empty() && order_id != o->order_id)
      BOOST_TEST(http_call(port, "GET", "/api/checkout/" + o->order_id).status == 404,
                 key << " replayed " << order_id << " though " << o->order_id << " exists");
  }
  return settled;
}

} // namespace ap::test

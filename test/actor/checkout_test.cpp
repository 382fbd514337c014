// The checkout actor's deadline, in simulated time: steps that never answer
// or answer late, against in-memory stand-ins for the database, the payment
// processor and the ledger.
#include <boost/test/unit_test.hpp>

#include "actors/audit_forwarder.hpp"
#include "actors/checkout.hpp"
#include "actors/errors.hpp"
#include "test/support/actor_fixture.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

constexpr auto deadline = 2000ms;

// What the stand-ins were asked, and the requests they hold unanswered.
struct world {
  bool hold_charges = false;
  bool hold_stores = false;
  std::vector<caf::typed_response_promise<domain::charge_result>> charges;
  std::vector<domain::charge_request> charge_requests;
  std::vector<caf::typed_response_promise<std::string>> stores;
  std::vector<std::string> stored, voided, reversed, released;
  std::vector<kernel::outbox_row> handed;
  int posted = 0;
};
using world_ptr = std::shared_ptr<world>;

template <class T>
caf::result<T> unused() {
  return make_error(error_code::internal, "not used by checkouts");
}

struct fake_state {
  static constexpr const char* name = "fake";
};

// The stand-ins answer held requests when told to (a promise is delivered
// from its own actor): the payment processor with captured charges, the
// database with a stored order (true) or a failure (false).
using held_database_actor = database_actor::extend<caf::reacts_to<atoms::wake_atom, bool>>;
using held_payment_actor = payment_actor::extend<caf::reacts_to<atoms::wake_atom>>;

held_database_actor::behavior_type
fake_database(held_database_actor::stateful_pointer<fake_state> self, world_ptr w) {
  return {
    [w](atoms::wake_atom, bool ok) {
      for (std::size_t i = 0; i < w->stores.size(); ++i) {
        if (ok)
          w->stores[i].deliver(w->stored[i]);
        else
          w->stores[i].deliver(make_error(error_code::database_unavailable, "gone"));
      }
      w->stores.clear();
    },
    [](atoms::ping_atom) { return unused<persistence::db_status>(); },
    [](atoms::catalog_atom) {
      return std::vector<domain::catalog_item>{
        {"sku-a", "Artifact A", 1500, "usd", "https://artifacts.invalid/a.tar.gz",
         std::string(64, 'a')}};
    },
    [](atoms::claim_atom, const persistence::idempotency_claim&) {
      return persistence::claim_result{"claimed", 0, ""};
    },
    [w](atoms::release_atom, const std::string&, const std::string& key) {
      w->released.push_back(key);
      return true;
    },
    [self, w](atoms::store_atom, const domain::order_record& rec) -> caf::result<std::string> {
      w->stored.push_back(rec.order_id);
      if (!w->hold_stores)
        return rec.order_id;
      w->stores.push_back(self->make_response_promise<std::string>());
      return w->stores.back();
    },
    [](atoms::get_atom, const std::string&, const std::string&) { return unused<std::string>(); },
    [](atoms::lease_atom, const std::string&, std::int32_t, std::int32_t) {
      return unused<std::vector<kernel::outbox_row>>();
    },
    [](atoms::settle_atom, const std::vector<kernel::delivery_outcome>&) {
      return unused<bool>();
    },
    [](atoms::stats_atom) { return unused<kernel::outbox_stats>(); },
    [](atoms::multisig_atom, const persistence::multisig_command&) {
      return unused<persistence::multisig_outcome>();
    },
  };
}

domain::charge_result captured(const domain::charge_request& req) {
  return {"pay_" + req.order_id, req.amount, req.currency, "captured", "mock", ""};
}

held_payment_actor::behavior_type
fake_payment(held_payment_actor::stateful_pointer<fake_state> self, world_ptr w) {
  return {
    [w](atoms::wake_atom) {
      for (std::size_t i = 0; i < w->charges.size(); ++i)
        w->charges[i].deliver(captured(w->charge_requests[i]));
      w->charges.clear();
    },
    [self, w](atoms::charge_atom,
              const domain::charge_request& req) -> caf::result<domain::charge_result> {
      w->charge_requests.push_back(req);
      if (!w->hold_charges)
        return captured(req);
      w->charges.push_back(self->make_response_promise<domain::charge_result>());
      return w->charges.back();
    },
    [w](atoms::void_atom, const std::string& payment_id) {
      w->voided.push_back(payment_id);
      return true;
    },
  };
}

ledger_actor::behavior_type fake_ledger(ledger_actor::stateful_pointer<fake_state>, world_ptr w) {
  return {
    [w](atoms::post_atom, const domain::journal_request& req) {
      ++w->posted;
      return domain::journal_entry{"je_" + req.order_id, "ledger", req.amount, req.amount,
                                   req.currency};
    },
    [w](atoms::reverse_atom, const std::string& entry_id) {
      w->reversed.push_back(entry_id);
      return true;
    },
  };
}

audit_forwarder_actor::behavior_type
fake_forwarder(audit_forwarder_actor::stateful_pointer<fake_state>, world_ptr w) {
  return {
    [](atoms::wake_atom) {},
    [w](atoms::handover_atom, const std::vector<kernel::outbox_row>& rows) {
      w->handed.insert(w->handed.end(), rows.begin(), rows.end());
    },
    [](atoms::tick_atom) {},
    [](atoms::gather_atom) {},
  };
}

struct checkout_fixture : test::actor_fixture {
  checkout_fixture() {
    database = sys.spawn(fake_database, w);
    payment = sys.spawn(fake_payment, w);
    directory.set_database(database);
    directory.set_payment(payment);
    directory.set_ledger(sys.spawn(fake_ledger, w));
    directory.set_forwarder(sys.spawn(fake_forwarder, w));
    checkout_config cfg;
    cfg.keys = std::make_shared<domain::proof_keyring>(
      "k1", std::map<std::string, std::string>{{"k1", std::string(32, 's')}});
    cfg.delivery_key = std::string(32, 'd');
    cfg.deadline = deadline;
    actor = sys.spawn(checkout, cfg, &directory, &registry);
    directory.set_checkout(actor);
    run();
  }

  ~checkout_fixture() {
    // Held promises keep their actors alive, and the actor system waits for
    // every actor at its end.
    w->charges.clear();
    w->stores.clear();
    for (const auto& a : {caf::actor_cast<caf::actor>(actor),
                          caf::actor_cast<caf::actor>(directory.database()),
                          caf::actor_cast<caf::actor>(directory.payment()),
                          caf::actor_cast<caf::actor>(directory.ledger()),
                          caf::actor_cast<caf::actor>(directory.forwarder())})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  // Starts a checkout; its answer lands in the returned slot once it comes.
  std::shared_ptr<std::optional<caf::expected<http_answer>>> start(const std::string& key) {
    auto out = std::make_shared<std::optional<caf::expected<http_answer>>>();
    domain::checkout_request req;
    req.customer_id = "cus_" + key;
    req.email = "buyer@example.com";
    req.currency = "usd";
    req.items = {{"sku-a", 2}};
    req.fingerprint = std::string(64, 'f');
    auto dest = actor;
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, atoms::checkout_atom::value, req, key)
        .then([out](http_answer& a) { *out = std::move(a); },
              [out](caf::error& e) { *out = caf::expected<http_answer>{std::move(e)}; });
    });
    run();
    return out;
  }

  std::uint64_t outcomes(const std::string& outcome) {
    return registry
      .get_counter("ap_checkouts_total", "Checkouts by outcome", {{"outcome", outcome}})
      .value();
  }

  world_ptr w = std::make_shared<world>();
  held_database_actor database;
  held_payment_actor payment;
  actor_directory directory;
  metrics::registry registry;
  checkout_actor actor;
};

bool is_timeout(const std::optional<caf::expected<http_answer>>& answer) {
  return answer && !*answer && answer->error() == caf::sec::request_timeout;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(checkout_deadline, checkout_fixture)

BOOST_AUTO_TEST_CASE(a_checkout_within_its_deadline_completes_and_undoes_nothing) {
  auto answer = start("k-fast");
  BOOST_REQUIRE(answer->has_value());
  BOOST_REQUIRE(answer->value());
  BOOST_TEST(answer->value()->status == 201);
  BOOST_TEST(w->stored.size() == 1u);
  BOOST_TEST(w->posted == 1);
  BOOST_TEST(w->voided.empty());
  BOOST_TEST(w->reversed.empty());
  BOOST_TEST(w->released.empty());
  BOOST_TEST(outcomes("completed") == 1u);
}

BOOST_AUTO_TEST_CASE(a_stored_checkout_hands_its_events_to_the_forwarder) {
  auto answer = start("k-events");
  BOOST_REQUIRE(answer->has_value() && answer->value());
  // order.completed and delivery.generated, written leased to this instance.
  BOOST_REQUIRE_EQUAL(w->handed.size(), 2u);
  for (const auto& row : w->handed) {
    BOOST_TEST(row.event_id.rfind("evt_", 0) == 0u);
    BOOST_TEST(row.payload.find(w->stored[0]) != std::string::npos);
    BOOST_TEST(row.attempts == 1);
    BOOST_TEST(row.committed_at_ms > 0);
  }
  BOOST_TEST(w->handed[0].event_type == "order.completed");
  BOOST_TEST(w->handed[1].event_type == "delivery.generated");
}

BOOST_AUTO_TEST_CASE(a_charge_that_never_answers_is_a_timeout_at_the_deadline) {
  w->hold_charges = true;
  auto answer = start("k-hang");
  BOOST_REQUIRE_EQUAL(w->charges.size(), 1u);
  advance(deadline - 100ms);
  BOOST_TEST(!answer->has_value());
  // The sweep runs every 100 ms: the answer comes at most that late.
  advance(200ms);
  BOOST_TEST(is_timeout(*answer));
  BOOST_TEST(outcomes("timed_out") == 1u);
  BOOST_TEST(outcomes("failed") == 0u);
}

BOOST_AUTO_TEST_CASE(a_charge_captured_after_the_deadline_is_voided_and_the_key_released) {
  w->hold_charges = true;
  auto answer = start("k-late-charge");
  advance(deadline + 200ms);
  BOOST_REQUIRE(is_timeout(*answer));
  BOOST_REQUIRE_EQUAL(w->charges.size(), 1u);
  caf::anon_send(payment, atoms::wake_atom::value);
  run();
  BOOST_TEST(w->voided == std::vector<std::string>{"pay_" + w->charge_requests[0].order_id});
  BOOST_TEST(w->released == std::vector<std::string>{"k-late-charge"});
  // Nothing goes further: no ledger entry, no order.
  BOOST_TEST(w->posted == 0);
  BOOST_TEST(w->stored.empty());
  BOOST_TEST(is_timeout(*answer));
}

BOOST_AUTO_TEST_CASE(an_order_stored_after_the_deadline_stands) {
  w->hold_stores = true;
  auto answer = start("k-late-store");
  BOOST_REQUIRE_EQUAL(w->stores.size(), 1u);
  advance(deadline + 200ms);
  BOOST_REQUIRE(is_timeout(*answer));
  caf::anon_send(database, atoms::wake_atom::value, true);
  run();
  // The order is committed: its charge, entry and key stay as they are.
  BOOST_TEST(w->voided.empty());
  BOOST_TEST(w->reversed.empty());
  BOOST_TEST(w->released.empty());
  BOOST_TEST(outcomes("completed") == 0u);
  BOOST_TEST(outcomes("timed_out") == 1u);
  // Its events are committed and go to the Kernel all the same.
  BOOST_TEST(w->handed.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_store_failing_after_the_deadline_undoes_the_checkout) {
  w->hold_stores = true;
  auto answer = start("k-late-fail");
  advance(deadline + 200ms);
  BOOST_REQUIRE(is_timeout(*answer));
  caf::anon_send(database, atoms::wake_atom::value, false);
  run();
  BOOST_TEST(w->voided.size() == 1u);
  BOOST_TEST(w->reversed.size() == 1u);
  BOOST_TEST(w->released == std::vector<std::string>{"k-late-fail"});
  // Counted once, as the timeout the client saw.
  BOOST_TEST(outcomes("failed") == 0u);
}

BOOST_AUTO_TEST_CASE(only_overdue_checkouts_are_answered_by_the_sweep) {
  w->hold_charges = true;
  auto first = start("k-first");
  advance(1500ms);
  auto second = start("k-second");
  advance(deadline - 1500ms + 100ms);
  BOOST_TEST(is_timeout(*first));
  BOOST_TEST(!second->has_value());
  advance(1500ms);
  BOOST_TEST(is_timeout(*second));
  BOOST_TEST(outcomes("timed_out") == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

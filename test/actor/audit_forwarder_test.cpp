// The audit forwarder against the in-process Kernel, in simulated time.
#include <boost/test/unit_test.hpp>

#include <set>

#include "actors/audit_forwarder.hpp"
#include "test/support/kernel_double.hpp"
#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/receipt.hpp"
#include "test/support/actor_fixture.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// An outbox in memory with the real interface: leases due rows, records
// outcomes (a failed row is due again 100 ms later, a refused one is
// dead-lettered and never leased again).
struct fake_row {
  domain::audit_event row;
  bool delivered = false;
  bool leased = false;
  std::int64_t lease_until_ms = 0;
  std::int64_t due_ms = 0;
  std::string kernel_id;
  std::string receipt;
  std::int32_t dead_letter_status = 0;
  std::string dead_letter_reason;
};

struct fake_outbox_state {
  static constexpr const char* name = "fake-outbox";
};

outbox_actor::behavior_type fake_outbox(outbox_actor::stateful_pointer<fake_outbox_state>,
                                        std::shared_ptr<std::vector<fake_row>> rows,
                                        std::function<std::int64_t()> now,
                                        std::shared_ptr<int> leases,
                                        std::shared_ptr<int> settles) {
  return {
    [rows, now, leases](atoms::lease_atom, const persistence::lease_terms& terms) {
      auto limit = terms.limit;
      auto lease_ms = terms.lease_ms;
      ++*leases;
      std::vector<domain::audit_event> out;
      for (auto& r : *rows) {
        if (static_cast<std::int32_t>(out.size()) >= limit)
          break;
        if (!r.delivered && r.dead_letter_status == 0 && (!r.leased || r.lease_until_ms <= now()) && r.due_ms <= now()) {
          r.leased = true;
          r.lease_until_ms = now() + lease_ms;
          ++r.row.attempts;
          out.push_back(r.row);
        }
      }
      return out;
    },
    [rows, now](atoms::renew_atom, const persistence::lease_terms& terms,
                const std::vector<std::string>& ids) {
      std::int32_t renewed = 0;
      for (const auto& id : ids)
        for (auto& r : *rows)
          if (r.row.event_id == id && r.leased && !r.delivered) {
            r.lease_until_ms = now() + terms.lease_ms;
            ++renewed;
          }
      return renewed;
    },
    [rows, now, settles](atoms::settle_atom,
                         const std::vector<domain::forwarding_outcome>& outcomes) {
      ++*settles;
      for (const auto& o : outcomes)
        for (auto& r : *rows)
          if (r.row.event_id == o.event_id) {
            r.leased = false;
            r.delivered = r.delivered || o.acknowledged;
            if (o.acknowledged) {
              r.kernel_id = o.kernel_id;
              // Kept as the store keeps it (migration 0026), read back as
              // receipt_document() gives it.
              r.receipt = o.in_columns ? domain::to_json(domain::receipt_of_columns(
                                           o.event_id, r.row.event_type, o.columns))
                                       : o.receipt;
            } else if (o.refused_status != 0) {
              r.dead_letter_status = o.refused_status;
              r.dead_letter_reason = o.refusal;
            } else
              r.due_ms = now() + 100;
          }
      return true;
    },
    [rows, now](atoms::stats_atom) {
      domain::outbox_stats s;
      for (const auto& r : *rows)
        if (r.dead_letter_status != 0)
          ++s.dead_lettered;
        else if (!r.delivered) {
          ++s.pending;
          s.oldest_pending_ms = std::max(s.oldest_pending_ms, now() - r.row.committed_at_ms);
        }
      return s;
    },
  };
}

struct forwarding : test::actor_fixture {
  metrics::registry registry;
  std::shared_ptr<std::vector<fake_row>> rows = std::make_shared<std::vector<fake_row>>();
  std::shared_ptr<kernel::audit_log> log =
    std::make_shared<kernel::audit_log>(std::string(32, '\x05'), "test-kernel");
  std::shared_ptr<kernel_faults> faults = std::make_shared<kernel_faults>();
  std::shared_ptr<int> leases = std::make_shared<int>(0);
  std::shared_ptr<int> settles = std::make_shared<int>(0);
  outbox_actor outbox;
  kernel_actor kernel;
  audit_forwarder_actor forwarder;

  std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
             sched.clock().now().time_since_epoch())
      .count();
  }

  forwarding() {
    auto clock = [this] { return now_ms(); };
    outbox = sys.spawn(fake_outbox, rows, clock, leases, settles);
    kernel = sys.spawn(kernel_double, log, faults);
    // These tests time the Kernel's answers to the millisecond: a wake-up
    // leases at once.
    forwarder = sys.spawn(audit_forwarder, config(0ms), &registry);
    run();
  }

  audit_forwarder_config config(std::chrono::milliseconds gather) {
    audit_forwarder_config cfg;
    cfg.now_ms = [this] { return now_ms(); };
    cfg.outbox = [this] { return outbox; };
    cfg.kernel = [this] { return kernel; };
    cfg.gather = gather;
    // Outcomes are recorded as soon as a batch is decided, so that these
    // tests read them when the Kernel answered; one test opens the window.
    cfg.settle_gather = 0ms;
    return cfg;
  }

  ~forwarding() {
    for (const auto& h : {caf::actor_cast<caf::actor>(forwarder), caf::actor_cast<caf::actor>(kernel),
                          caf::actor_cast<caf::actor>(outbox)})
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    run();
  }

  // A checkout commits an event now and wakes the forwarder.
  void commit(const std::string& event_id) {
    fake_row r;
    r.row = {event_id, "order.completed", R"({"orderId":")" + event_id + R"("})", now_ms(), 0};
    rows->push_back(r);
    caf::anon_send(forwarder, atoms::wake_atom::value);
    run();
  }

  std::uint64_t count(const std::string& name) {
    return registry.get_counter(name, "").value();
  }
  std::uint64_t rejections(const char* reason) {
    return registry.get_counter("ap_audit_receipt_rejections_total", "", {{"reason", reason}}).value();
  }
  metrics::histogram& lag() {
    return registry.get_histogram("ap_audit_lag_seconds", "");
  }
  // A checkout commits events leased to this instance and hands them over.
  void commit_leased(caf::actor to, const std::vector<std::string>& event_ids) {
    std::vector<domain::audit_event> handed;
    for (const auto& id : event_ids) {
      fake_row r;
      r.row = {id, "order.completed", R"({"orderId":")" + id + R"("})", now_ms(), 1};
      r.leased = true;
      r.lease_until_ms = now_ms() + 2000;
      rows->push_back(r);
      handed.push_back(r.row);
    }
    caf::anon_send(caf::actor_cast<audit_forwarder_actor>(to), atoms::handover_atom::value,
                   std::move(handed));
    run();
  }

  // Lets `how_long` pass in steps of 50 ms, so every timer on the way
  // fires (advance() jumps and fires each due timer once).
  void pass(std::chrono::milliseconds how_long) {
    for (auto t = 0ms; t < how_long; t += 50ms)
      advance(50ms);
  }

  std::size_t delivered_rows() {
    std::size_t n = 0;
    for (const auto& r : *rows)
      n += r.delivered ? 1 : 0;
    return n;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(audit_forwarding, forwarding)

BOOST_AUTO_TEST_CASE(a_kernel_answering_in_2900_ms_is_within_budget) {
  faults->latency = 2900ms;
  commit("evt_a");
  advance(2899ms);
  BOOST_TEST(delivered_rows() == 0u);
  advance(1ms);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(count("ap_audit_freshness_breaches_total") == 0u);
  BOOST_TEST(lag().count() == 1u);
  BOOST_TEST(lag().sum() == 2.9, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(log->size() == 1u);
  BOOST_TEST((*rows)[0].kernel_id == log->events()[0].id);
}

BOOST_AUTO_TEST_CASE(a_kernel_answering_in_3500_ms_breaches_and_is_counted) {
  faults->latency = 3500ms;
  commit("evt_b");
  advance(3500ms);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(count("ap_audit_freshness_breaches_total") == 1u);
  BOOST_TEST(lag().sum() == 3.5, boost::test_tools::tolerance(1e-9));
}

// The answer to a batch's call waits for its slowest request: an event the
// Kernel acknowledged early counts its lag to its own reply, not to the
// batch's answer.
BOOST_AUTO_TEST_CASE(an_event_acknowledged_before_its_batch_is_answered_counts_its_lag_to_its_reply) {
  auto committed = now_ms();
  faults->latency = 4000ms;
  faults->answered_at = [committed](const domain::audit_event&) { return committed + 200; };
  commit("evt_early");
  advance(4000ms);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(count("ap_audit_freshness_breaches_total") == 0u);
  BOOST_TEST(lag().count() == 1u);
  BOOST_TEST(lag().sum() == 0.2, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(an_outage_delays_events_and_loses_none) {
  faults->outage = true;
  for (int i = 0; i < 5; ++i)
    commit("evt_" + std::to_string(i));
  advance(1s);
  BOOST_TEST(log->size() == 0u);
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(count("ap_audit_forward_failures_total") >= 5u);
  faults->outage = false;
  advance(500ms);
  BOOST_TEST(delivered_rows() == 5u);
  // Every event exactly once, and the chain verifies.
  BOOST_TEST(log->size() == 5u);
  std::set<std::string> ids;
  for (const auto& e : log->events())
    ids.insert(e.event_id);
  BOOST_TEST(ids.size() == 5u);
  BOOST_TEST(log->verify().valid);
  // Events committed before the outage ended arrived late: counted.
  BOOST_TEST(count("ap_audit_freshness_breaches_total") == 0u);  // 1.5 s < 3 s
}

BOOST_AUTO_TEST_CASE(a_kernel_slower_than_the_call_timeout_gets_the_event_once) {
  faults->latency = 6s;  // beyond the 5 s call timeout
  commit("evt_slow");
  advance(5s);
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(count("ap_audit_forward_failures_total") == 1u);
  faults->latency = 0ms;
  advance(500ms);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(log->size() == 1u);  // the retry was deduplicated by event id
  BOOST_TEST(count("ap_audit_freshness_breaches_total") == 1u);
}

// A batch's Kernel calls end at one deadline, the call timeout, which the
// poll checks: no timer of their own (a timer each cost CAF's clock thread
// two wake-ups a call). A Kernel that holds every call unanswered (its
// client died with them in hand) has them sent again after the deadline.
BOOST_AUTO_TEST_CASE(a_batch_s_calls_wait_on_no_timer_each_and_end_at_their_deadline) {
  faults->silent = true;
  auto timers = sched.clock().schedule().size();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back("evt_held_" + std::to_string(i));
  commit_leased(caf::actor_cast<caf::actor>(forwarder), ids);
  BOOST_TEST(faults->audit_calls == 20u);
  BOOST_TEST(sched.clock().schedule().size() == timers);
  pass(4900ms);
  BOOST_TEST(count("ap_audit_forward_failures_total") == 0u);  // still within the deadline
  BOOST_TEST(delivered_rows() == 0u);
  faults->silent = false;
  // A poll past the deadline ends the calls; the next one leases the rows again.
  pass(800ms);
  BOOST_TEST(count("ap_audit_forward_failures_total") == 20u);
  BOOST_TEST(delivered_rows() == 20u);
  for (const auto& id : ids)
    BOOST_TEST(faults->submissions[id] == 2, id);
  BOOST_TEST(log->size() == 20u);
  BOOST_TEST(log->verify().valid);
}

// The lease (2 s) is shorter than the call's timeout (5 s): a Kernel that
// answers in 2.5 s must not be sent the event a second time by the poll
// that finds the lease run out.
BOOST_AUTO_TEST_CASE(a_kernel_slower_than_the_lease_gets_each_event_once) {
  faults->latency = 2500ms;
  commit("evt_lease");
  commit_leased(caf::actor_cast<caf::actor>(forwarder), {"evt_handed"});
  advance(2500ms);
  BOOST_TEST(delivered_rows() == 2u);
  advance(3s);  // polls go on; nothing is sent again
  BOOST_TEST(faults->audit_calls == 2u);
  for (const auto& r : *rows)
    BOOST_TEST(r.row.attempts == 1, r.row.event_id);
}

BOOST_AUTO_TEST_CASE(wake_ups_within_the_gather_window_share_one_lease) {
  auto gathering = sys.spawn(audit_forwarder, config(10ms), &registry);
  run();  // its first poll
  auto before = *leases;
  for (int i = 0; i < 5; ++i) {
    fake_row r;
    r.row = {"evt_w" + std::to_string(i), "order.completed", R"({"orderId":"o"})", now_ms(), 0};
    rows->push_back(r);
    caf::anon_send(gathering, atoms::wake_atom::value);
    run();
    advance(1ms);
  }
  BOOST_TEST(*leases == before);
  BOOST_TEST(delivered_rows() == 0u);
  advance(5ms);  // 10 ms after the first wake-up
  BOOST_TEST(*leases == before + 1);
  BOOST_TEST(delivered_rows() == 5u);
  BOOST_TEST(lag().sum() == 5 * 0.010 - (0.004 + 0.003 + 0.002 + 0.001),
             boost::test_tools::tolerance(1e-9));
  caf::anon_send_exit(gathering, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(handed_over_rows_are_sent_without_a_lease_in_one_settle) {
  auto gathering = sys.spawn(audit_forwarder, config(10ms), &registry);
  run();  // its first poll
  auto before = *leases;
  commit_leased(caf::actor_cast<caf::actor>(gathering), {"evt_h1", "evt_h2"});
  advance(4ms);
  commit_leased(caf::actor_cast<caf::actor>(gathering), {"evt_h3", "evt_h4"});
  BOOST_TEST(delivered_rows() == 0u);
  advance(6ms);  // the end of the gather window
  BOOST_TEST(delivered_rows() == 4u);
  BOOST_TEST(log->size() == 4u);
  BOOST_TEST(*leases == before);
  BOOST_TEST(count("ap_audit_events_forwarded_total") == 4u);
  caf::anon_send_exit(gathering, caf::exit_reason::user_shutdown);
  run();
}

// The outcomes of batches decided within the settle window are recorded by
// one call at its end; the window holds back neither the Kernel calls of
// the batches after them nor, once enough outcomes wait, the record.
BOOST_AUTO_TEST_CASE(batches_decided_within_the_settle_window_settle_in_one_call) {
  auto cfg = config(0ms);
  cfg.settle_gather = 20ms;
  cfg.settle_max = 5;
  auto settling = sys.spawn(audit_forwarder, cfg, &registry);
  run();  // its first poll
  auto before = *settles;
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_s1", "evt_s2"});
  BOOST_TEST(log->size() == 2u);  // in the Kernel at once
  BOOST_TEST(delivered_rows() == 0u);
  advance(5ms);
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_s3"});
  BOOST_TEST(log->size() == 3u);
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(*settles == before);
  advance(15ms);  // 20 ms after the first batch was decided
  BOOST_TEST(*settles == before + 1);
  BOOST_TEST(delivered_rows() == 3u);
  for (const auto& r : *rows)
    BOOST_TEST(r.kernel_id.empty() == false, r.row.event_id);
  // Five outcomes waiting are recorded without waiting for the window's end.
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_s4", "evt_s5"});
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_s6", "evt_s7", "evt_s8"});
  BOOST_TEST(*settles == before + 2);
  BOOST_TEST(delivered_rows() == 8u);
  BOOST_TEST(log->size() == 8u);
  BOOST_TEST(count("ap_audit_events_forwarded_total") == 8u);
  caf::anon_send_exit(settling, caf::exit_reason::user_shutdown);
  run();
}

// A refusal recorded together with other batches' outcomes is still logged
// and counted as a dead letter, with the Kernel's status.
BOOST_AUTO_TEST_CASE(a_refusal_settled_with_other_batches_is_dead_lettered) {
  faults->answer_status = [](const domain::audit_event& e) -> std::int32_t {
    return e.event_id == "evt_r2" ? 422 : 0;
  };
  auto cfg = config(0ms);
  cfg.settle_gather = 20ms;
  auto settling = sys.spawn(audit_forwarder, cfg, &registry);
  run();
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_r1"});
  commit_leased(caf::actor_cast<caf::actor>(settling), {"evt_r2", "evt_r3"});
  BOOST_TEST(count("ap_audit_dead_letters_total") == 0u);
  advance(20ms);
  BOOST_TEST(delivered_rows() == 2u);
  BOOST_TEST(count("ap_audit_dead_letters_total") == 1u);
  for (const auto& r : *rows) {
    BOOST_TEST(r.dead_letter_status == (r.row.event_id == "evt_r2" ? 422 : 0), r.row.event_id);
    if (r.row.event_id == "evt_r2")
      BOOST_TEST(r.dead_letter_reason.find("scripted answer") != std::string::npos);
  }
  caf::anon_send_exit(settling, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(rows_handed_over_beyond_the_bound_wait_for_their_lease_to_end) {
  auto cfg = config(0ms);
  cfg.max_handed = 2;
  cfg.max_cycles = 1;
  auto bounded = sys.spawn(audit_forwarder, cfg, &registry);
  run();
  faults->latency = 1000ms;  // the one cycle stays busy for a second
  commit_leased(caf::actor_cast<caf::actor>(bounded), {"evt_b1"});
  commit_leased(caf::actor_cast<caf::actor>(bounded), {"evt_b2", "evt_b3"});
  commit_leased(caf::actor_cast<caf::actor>(bounded), {"evt_b4"});  // beyond the bound
  faults->latency = 0ms;
  advance(1000ms);
  BOOST_TEST(delivered_rows() == 3u);  // evt_b1, then the two held ones
  // evt_b4 stays leased to this instance until its lease runs out; then a poll takes it.
  advance(900ms);
  BOOST_TEST(delivered_rows() == 3u);
  advance(400ms);
  BOOST_TEST(delivered_rows() == 4u);
  caf::anon_send_exit(bounded, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(polling_finds_rows_committed_without_a_wake_up) {
  fake_row r;
  r.row = {"evt_quiet", "order.completed", R"({"orderId":"o"})", now_ms(), 0};
  rows->push_back(r);  // e.g. written by another instance
  advance(250ms);
  BOOST_TEST(delivered_rows() == 1u);
}

// The gauges are registered at start, so their names alone prove nothing:
// their values must rise with what is pending and fall back once it is sent.
BOOST_AUTO_TEST_CASE(outbox_gauges_follow_the_outbox) {
  auto& pending = registry.get_gauge("ap_audit_outbox_pending", "");
  auto& oldest = registry.get_gauge("ap_audit_outbox_oldest_pending_seconds", "");
  faults->outage = true;
  commit("evt_g1");
  commit("evt_g2");
  advance(2s);
  BOOST_TEST(pending.value() == 2.0);
  // Read at the last refresh, at most a stats interval ago.
  BOOST_TEST(oldest.value() >= 1.0);
  BOOST_TEST(oldest.value() <= 2.0);
  advance(2s);
  auto older = oldest.value();
  BOOST_TEST(older >= 3.0);
  faults->outage = false;
  advance(3s);
  BOOST_REQUIRE(delivered_rows() == 2u);
  advance(2s);  // the next refresh
  BOOST_TEST(pending.value() == 0.0);
  BOOST_TEST(oldest.value() == 0.0);
}

// The Kernel refuses two events for what they carry (413, 422): each is
// submitted once, dead-lettered with the Kernel's status, counted, and
// shown by the gauge; the events beside them, and after them, get through.
BOOST_AUTO_TEST_CASE(an_event_the_kernel_refuses_is_dead_lettered_after_one_submission) {
  faults->answer_status = [](const domain::audit_event& e) -> std::int32_t {
    return e.event_id == "evt_big" ? 413 : e.event_id == "evt_bad" ? 422 : 0;
  };
  auto& dead_lettered = registry.get_gauge("ap_audit_outbox_dead_lettered", "");
  auto& pending = registry.get_gauge("ap_audit_outbox_pending", "");
  commit("evt_1");
  commit("evt_big");
  commit("evt_2");
  commit("evt_bad");
  pass(5s);
  BOOST_TEST(faults->submissions["evt_big"] == 1);
  BOOST_TEST(faults->submissions["evt_bad"] == 1);
  BOOST_TEST(delivered_rows() == 2u);
  BOOST_TEST(log->size() == 2u);
  BOOST_TEST(count("ap_audit_dead_letters_total") == 2u);
  BOOST_TEST(count("ap_audit_forward_failures_total") == 0u);
  for (const auto& r : *rows) {
    auto expected = r.row.event_id == "evt_big" ? 413 : r.row.event_id == "evt_bad" ? 422 : 0;
    BOOST_TEST(r.dead_letter_status == expected, r.row.event_id);
    if (expected != 0)
      BOOST_TEST(r.dead_letter_reason.find("scripted answer") != std::string::npos);
  }
  BOOST_TEST(dead_lettered.value() == 2.0);
  BOOST_TEST(pending.value() == 0.0);
  // Later events flow as before; the dead-lettered ones stay where they are.
  commit("evt_3");
  pass(3s);
  BOOST_TEST(delivered_rows() == 3u);
  BOOST_TEST(faults->submissions["evt_big"] == 1);
  BOOST_TEST(faults->submissions["evt_bad"] == 1);
  BOOST_TEST(count("ap_audit_dead_letters_total") == 2u);
}

// 429 and 500 say nothing against the event: it is sent again until the
// Kernel takes it, and nothing is dead-lettered.
BOOST_AUTO_TEST_CASE(an_event_answered_429_or_500_is_sent_again) {
  auto status = std::make_shared<std::int32_t>(429);
  faults->answer_status = [status](const domain::audit_event&) { return *status; };
  commit("evt_busy");
  pass(2s);
  auto after_429 = faults->submissions["evt_busy"];
  BOOST_TEST(after_429 >= 5);
  *status = 500;
  pass(2s);
  BOOST_TEST(faults->submissions["evt_busy"] >= after_429 + 5);
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(count("ap_audit_dead_letters_total") == 0u);
  BOOST_TEST(count("ap_audit_forward_failures_total") >= 10u);
  BOOST_TEST(rows->front().dead_letter_status == 0);
  *status = 0;
  pass(2s);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(log->size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_delivered_event_keeps_its_receipt_which_verifies_under_the_published_key) {
  commit("evt_r");
  BOOST_REQUIRE(delivered_rows() == 1u);
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict((*rows)[0].receipt, doc));
  auto receipt = domain::receipt_from_json(doc);
  BOOST_REQUIRE(receipt);
  BOOST_TEST(receipt->event_type == "order.completed");
  BOOST_TEST(receipt->ack.event_id == "evt_r");
  BOOST_TEST(receipt->ack.kernel_id == log->events()[0].id);
  BOOST_TEST(domain::to_string(domain::check_receipt(receipt->ack, "evt_r", (*rows)[0].row.payload,
                                                     {{log->signer_id(), crypto::ed25519_verifier{log->public_key()}}}))
             == "ok");
  // The keys were read once, at the start, before any receipt needed them.
  BOOST_TEST(faults->key_reads == 1);
}

BOOST_AUTO_TEST_CASE(an_answer_with_only_an_id_leaves_the_event_pending) {
  // What a misrouted endpoint, or anything in between, might answer.
  faults->tamper = [](kernel::audit_ack) { return kernel::audit_ack{"x", "", "", "", "", "", ""}; };
  commit("evt_x");
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(rejections("malformed") == 1u);
  BOOST_TEST(count("ap_audit_events_forwarded_total") == 0u);
  BOOST_TEST(lag().count() == 0u);
  // Retried with its backoff, and refused each time.
  for (int i = 0; i < 4; ++i)
    advance(250ms);
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(rejections("malformed") >= 3u);
  BOOST_TEST((*rows)[0].receipt.empty());
  // Once the Kernel answers with a receipt, it is delivered.
  faults->tamper = nullptr;
  advance(1s);
  BOOST_TEST(delivered_rows() == 1u);
  auto text = registry.render();
  BOOST_TEST(text.find(R"(ap_audit_receipt_rejections_total{reason="bad_signature"} 0)")
               != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(each_failed_check_leaves_the_event_pending_and_is_counted_by_its_reason) {
  crypto::ed25519_signer other{std::string(32, '\x0b')};
  std::vector<std::pair<const char*, std::function<kernel::audit_ack(kernel::audit_ack)>>> cases{
    {"event_id_mismatch", [](kernel::audit_ack a) { a.event_id += "-other"; return a; }},
    {"hash_mismatch", [](kernel::audit_ack a) {
       a.hash = std::string(64, 'a');
       return a;
     }},
    // Signed by a key the Kernel does not publish, under its signer's name.
    {"bad_signature", [other](kernel::audit_ack a) {
       a.signature = crypto::base64_encode(other.sign(*crypto::hex_decode(a.hash)));
       return a;
     }},
    {"unknown_signer", [](kernel::audit_ack a) {
       a.signer_id = "nobody";
       return a;
     }},
  };
  for (const auto& [reason, tamper] : cases) {
    faults->tamper = tamper;
    auto delivered_before = delivered_rows();
    commit(std::string{"evt_"} + reason);
    advance(1100ms);  // the unknown signer waits for the next read of the keys
    BOOST_TEST(delivered_rows() == delivered_before, reason);
    BOOST_TEST(rejections(reason) >= 1u, reason);
  }
  // None of these answers is counted as malformed.
  BOOST_TEST(rejections("malformed") == 0u);
}

BOOST_AUTO_TEST_CASE(a_new_signer_is_read_once_for_all_the_receipts_that_name_it) {
  BOOST_TEST(faults->key_reads == 1);
  // The Kernel rotates its signing key; its receipts name the new signer.
  crypto::ed25519_signer next{std::string(32, '\x0c')};
  faults->also_published = {{"kernel-2", next.public_key()}};
  faults->tamper = [next](kernel::audit_ack a) {
    a.signer_id = "kernel-2";
    a.signature = crypto::base64_encode(next.sign(*crypto::hex_decode(a.hash)));
    return a;
  };
  // The last read is more than a second ago: the keys are read at once.
  advance(1s);
  for (int i = 0; i < 3; ++i)
    commit("evt_n" + std::to_string(i));
  BOOST_TEST(delivered_rows() == 3u);
  BOOST_TEST(faults->key_reads == 2);
  BOOST_TEST(rejections("unknown_signer") == 0u);

  // A signer that is not published: the keys were read just now, so the
  // next read waits for its turn, and the receipts with it.
  faults->tamper = [next](kernel::audit_ack a) {
    a.signer_id = "kernel-3";
    a.signature = crypto::base64_encode(next.sign(*crypto::hex_decode(a.hash)));
    return a;
  };
  commit("evt_u1");
  commit("evt_u2");
  BOOST_TEST(faults->key_reads == 2);
  BOOST_TEST(rejections("unknown_signer") == 0u);
  advance(999ms);
  BOOST_TEST(faults->key_reads == 2);
  advance(1ms);
  BOOST_TEST(faults->key_reads == 3);
  BOOST_TEST(rejections("unknown_signer") == 2u);
  BOOST_TEST(delivered_rows() == 3u);
}

BOOST_AUTO_TEST_CASE(a_key_replaced_under_the_same_signer_id_is_read_again) {
  crypto::ed25519_signer next{std::string(32, '\x0e')};
  faults->also_published = {{log->signer_id(), next.public_key()}};
  faults->tamper = [next](kernel::audit_ack a) {
    a.signature = crypto::base64_encode(next.sign(*crypto::hex_decode(a.hash)));
    return a;
  };
  advance(1s);
  commit("evt_same_id");
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(faults->key_reads == 2);
  BOOST_TEST(rejections("bad_signature") == 0u);
}

BOOST_AUTO_TEST_CASE(receipts_waiting_for_keys_that_cannot_be_read_go_again) {
  crypto::ed25519_signer next{std::string(32, '\x0d')};
  faults->tamper = [next](kernel::audit_ack a) {
    a.signer_id = "kernel-2";
    a.signature = crypto::base64_encode(next.sign(*crypto::hex_decode(a.hash)));
    return a;
  };
  faults->keys_down = true;
  advance(1s);
  commit("evt_k");
  // Nothing is known against the receipt: released for a retry, not rejected.
  BOOST_TEST(delivered_rows() == 0u);
  BOOST_TEST(rejections("unknown_signer") == 0u);
  BOOST_TEST(count("ap_audit_forward_failures_total") == 1u);
  // The keys come back with the new signer: the retry is delivered.
  faults->keys_down = false;
  faults->also_published = {{"kernel-2", next.public_key()}};
  advance(1s);
  BOOST_TEST(delivered_rows() == 1u);
  BOOST_TEST(rejections("unknown_signer") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

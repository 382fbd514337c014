// payments-mock: a local stand-in for the payment processor (SPEC §9). It
// speaks the subset of Stripe's REST API the connector uses, on the same
// wire: PaymentIntents (create with confirm, confirm, retrieve, cancel, list)
// and Refunds (create, retrieve, list), form-encoded requests, Bearer secret
// keys, Stripe's error objects and test payment methods, and idempotent
// requests kept as Stripe keeps them. Faults (latency with jitter, error rate,
// lost replies, outage) are settable by flags and at run time through
// /mock/faults, `--state` keeps every record across a kill -9, and
// `--tls-cert`/`--tls-key` serve it over https as the real API is (SPEC §10).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "core/config.hpp"
#include "core/json.hpp"
#include "core/text.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

using namespace ap;

constexpr const char* usage =
  "usage: payments-mock [options]\n"
  "\n"
  "A local stand-in for Stripe's REST API (the PaymentIntents and Refunds subset) over\n"
  "http or https: test payment methods, card declines, idempotent requests; faults for tests.\n"
  "\n"
  "options:\n"
  "  --port N                  port to listen on (default 6070; 0 picks a free one)\n"
  "  --bind ADDRESS            address to bind (default 127.0.0.1)\n"
  "  --state FILE              keep intents, refunds and idempotency keys in FILE\n"
  "                            (JSON lines) across restarts\n"
  "  --secret-key KEY          a secret key accepted; repeat for more, every one given is\n"
  "                            accepted and no other (default: any sk_test_…)\n"
  "  --latency-ms N            added to every /v1 answer, after the request took effect\n"
  "  --jitter-ms N             up to N more, at random\n"
  "  --error-rate R            answer 500 to this fraction (0..1) of /v1 requests,\n"
  "                            before they take effect\n"
  "  --lost-reply-rate R       carry out this fraction (0..1) of /v1 requests, then reset\n"
  "                            the connection instead of answering\n"
  "  --outage                  answer 503 to every /v1 request\n"
  "  --max-objects N           payment intents (and refunds) kept at most (default 1000000);\n"
  "                            beyond it creating one answers 503\n"
  "  --max-idempotency-keys N  idempotency keys kept, the oldest forgotten first\n"
  "                            (default 200000)\n"
  "  --tls-cert FILE           serve https:// only, with this certificate chain (PEM)\n"
  "  --tls-key FILE            and this private key (PEM); both or neither\n"
  "  --help, --version\n"
  "\n"
  "API (as at api.stripe.com, Authorization: Bearer <secret key>):\n"
  "  POST /v1/payment_intents            GET /v1/payment_intents[?limit&starting_after&ending_before]\n"
  "  GET  /v1/payment_intents/{id}       POST /v1/payment_intents/{id}/confirm\n"
  "  POST /v1/payment_intents/{id}/cancel\n"
  "  POST /v1/refunds                    GET /v1/refunds[?payment_intent&limit&starting_after\n"
  "                                                       &ending_before]\n"
  "  GET  /v1/refunds/{id}\n"
  "Test payment methods: pm_card_visa*, pm_card_mastercard*, pm_card_amex, pm_card_discover\n"
  "succeed; pm_card_chargeDeclined, pm_card_chargeDeclinedInsufficientFunds, …LostCard,\n"
  "…StolenCard, …Fraudulent, …ExpiredCard, …IncorrectCvc, …ProcessingError decline (402).\n"
  "\n"
  "At run time: GET /mock/faults shows the faults, POST /mock/faults\n"
  "{\"latencyMs\",\"jitterMs\",\"errorRate\",\"lostReplyRate\",\"outage\"} changes any of them.\n"
  "GET /mock/keys shows how many secret keys are accepted ({\"accepted\":N,\"anyTestKey\":bool},\n"
  "never a key); POST /mock/keys {\"accept\":[\"sk_test_…\", …]} replaces them, so a key\n"
  "revoked after a rotation is refused (401) from then on.\n"
  "GET /health answers {\"service\":\"payments-mock\",\"status\":\"ok\"}.\n";

/// The API version answered when a request pins none.
constexpr const char* default_api_version = "2024-06-20";

/// Stripe's largest amount for a charge, in minor units.
constexpr std::int64_t max_amount = 99999999;

/// Answers slower than this would be cut off by the server's handler
/// deadline; the latency fault stays below it.
constexpr long max_latency_ms = 600000;

// -- faults and delayed answers ------------------------------------------------

struct faults {
  std::atomic<long> latency_ms{0};
  std::atomic<long> jitter_ms{0};
  std::atomic<double> error_rate{0};
  std::atomic<double> lost_reply_rate{0};
  std::atomic<bool> outage{false};

  std::string to_json() const {
    auto number = [](double v) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.6g", v);
      return std::string{buf};
    };
    return "{\"errorRate\":" + number(error_rate.load()) + ",\"jitterMs\":"
           + std::to_string(jitter_ms.load()) + ",\"latencyMs\":" + std::to_string(latency_ms.load())
           + ",\"lostReplyRate\":" + number(lost_reply_rate.load())
           + ",\"outage\":" + (outage.load() ? "true" : "false") + "}";
  }
};

// Holds answers back on a timer thread of its own: the io thread only
// enqueues, so a latency fault never slows the answers that are due.
class timer_thread {
public:
  timer_thread() : worker_([this] { run(); }) {}
  ~timer_thread() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stopping_ = true;
    }
    wake_.notify_one();
    worker_.join();
  }
  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;

  void at(std::chrono::steady_clock::time_point due, std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      pending_.push(entry{due, sequence_++, std::move(fn)});
    }
    wake_.notify_one();
  }

private:
  struct entry {
    std::chrono::steady_clock::time_point due;
    std::uint64_t sequence;
    std::function<void()> fn;
    // The earliest first; equal times in the order they were queued.
    bool operator<(const entry& other) const {
      return due != other.due ? due > other.due : sequence > other.sequence;
    }
  };

  void run() {
    std::unique_lock<std::mutex> lock{mutex_};
    for (;;) {
      if (stopping_)
        return;
      if (pending_.empty()) {
        wake_.wait(lock);
        continue;
      }
      auto due = pending_.top().due;
      if (std::chrono::steady_clock::now() < due) {
        wake_.wait_until(lock, due);
        continue;
      }
      auto fn = std::move(const_cast<entry&>(pending_.top()).fn);
      pending_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::priority_queue<entry> pending_;
  std::uint64_t sequence_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

// -- form encoding -------------------------------------------------------------

/// One decoded `key=value` pair of a form body or query string.
struct form_field {
  std::string key;
  std::string value;
  bool operator<(const form_field& o) const { return key != o.key ? key < o.key : value < o.value; }
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Percent-decoding with `+` as a space; false on a broken escape.
bool form_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size())
        return false;
      int hi = hex_digit(in[i + 1]);
      int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return true;
}

// Whether `s` is UTF-8 without NUL: everything kept is written back as JSON
// (answers, the state file), which must stay valid.
bool clean_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0)
      return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 0) : c >= 0xC2 ? 2 : 0;
    if (len == 0 || i + len > s.size())
      return false;
    std::uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    bool overlong_or_surrogate = len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF));
    if (overlong_or_surrogate || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += len;
  }
  return true;
}

/// Splits `application/x-www-form-urlencoded` text into decoded fields;
/// false when an escape is broken or a name or value is not clean UTF-8.
bool parse_form(std::string_view text, std::vector<form_field>& out) {
  std::size_t start = 0;
  while (start <= text.size()) {
    auto amp = text.find('&', start);
    auto piece = text.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!piece.empty()) {
      auto eq = piece.find('=');
      form_field f;
      if (!form_decode(piece.substr(0, eq), f.key) || f.key.empty())
        return false;
      if (eq != std::string_view::npos && !form_decode(piece.substr(eq + 1), f.value))
        return false;
      if (!clean_utf8(f.key) || !clean_utf8(f.value))
        return false;
      out.push_back(std::move(f));
    }
    if (amp == std::string_view::npos)
      break;
    start = amp + 1;
  }
  return true;
}

bool is_form_content_type(std::string_view value) {
  auto media = value.substr(0, value.find(';'));
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  return equals_ignoring_case(media, "application/x-www-form-urlencoded");
}

// -- Stripe's error objects -------------------------------------------------------

/// What one /v1 call answers.
struct answer {
  int status = 200;
  std::string body;
  /// Whether the endpoint got as far as the object it acts on: only then is
  /// the answer saved under the request's Idempotency-Key (Stripe saves no
  /// result for a request whose parameters fail validation).
  bool executed = false;
  std::vector<std::pair<std::string, std::string>> headers;
};

std::string doc_url(std::string_view code) {
  std::string url = "https://stripe.com/docs/error-codes/";
  for (char c : code)
    url += c == '_' ? '-' : c;
  return url;
}

/// `{"error":{…}}`; `extra` holds further members, each starting with a comma.
std::string error_json(std::string_view type, std::string_view message, std::string_view code = {},
                       std::string_view param = {}, std::string_view extra = {}) {
  std::string out = "{\"error\":{";
  if (!code.empty()) {
    out += "\"code\":";
    json::append_quoted(out, code);
    out += ",\"doc_url\":";
    json::append_quoted(out, doc_url(code));
    out += ',';
  }
  out += "\"message\":";
  json::append_quoted(out, message);
  if (!param.empty()) {
    out += ",\"param\":";
    json::append_quoted(out, param);
  }
  out += extra;
  out += ",\"type\":";
  json::append_quoted(out, type);
  out += "}}";
  return out;
}

/// A refusal of the request as sent: nothing happened and nothing is saved.
answer invalid(std::string_view message, std::string_view param = {}, std::string_view code = {}) {
  return answer{400, error_json("invalid_request_error", message, code, param), false, {}};
}

answer no_such(std::string_view object, std::string_view id, std::string_view param) {
  return answer{404,
                error_json("invalid_request_error",
                           "No such " + std::string{object} + ": '" + std::string{id} + "'",
                           "resource_missing", param),
                false, {}};
}

// -- the objects ---------------------------------------------------------------

/// An object id ("pi_" and 24 characters) kept inline: a stored object needs
/// no allocation for it, and the indexes point into it.
class object_id {
public:
  static constexpr std::size_t capacity = 31;
  bool assign(std::string_view text) {
    if (text.size() > capacity)
      return false;
    std::memcpy(chars_.data(), text.data(), text.size());
    size_ = static_cast<std::uint8_t>(text.size());
    return true;
  }
  std::string_view view() const { return {chars_.data(), size_}; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }

private:
  std::array<char, capacity> chars_{};
  std::uint8_t size_ = 0;
};

enum class intent_status {
  requires_payment_method,
  requires_confirmation,
  requires_action,
  processing,
  requires_capture,
  canceled,
  succeeded,
};

constexpr std::array<std::string_view, 7> status_names{
  "requires_payment_method", "requires_confirmation", "requires_action", "processing",
  "requires_capture",        "canceled",              "succeeded"};

std::string_view name_of(intent_status s) {
  return status_names[static_cast<std::size_t>(s)];
}

std::optional<intent_status> status_named(std::string_view name) {
  for (std::size_t i = 0; i < status_names.size(); ++i)
    if (status_names[i] == name)
      return static_cast<intent_status>(i);
  return std::nullopt;
}

/// Metadata pairs, sorted by key.
using metadata_list = std::vector<std::pair<std::string, std::string>>;

/// A PaymentIntent as stored: its JSON is rendered on demand.
struct payment_intent {
  object_id id;
  object_id latest_charge;
  std::int64_t amount = 0;
  std::int64_t amount_received = 0;
  std::int64_t created = 0;
  /// 0 while not canceled.
  std::int64_t canceled_at = 0;
  /// Refunded so far (a Charge field at Stripe, kept here to check refunds).
  std::int64_t refunded = 0;
  intent_status status = intent_status::requires_payment_method;
  std::string currency;
  /// Empty when null.
  std::string payment_method;
  /// The payment method of `last_payment_error`; empty when there is none.
  std::string failed_payment_method;
  std::string description;
  std::string cancellation_reason;
  metadata_list metadata;
  /// Positions of its refunds in the refund log.
  std::vector<std::uint32_t> refunds;
};

struct refund {
  object_id id;
  object_id payment_intent;
  object_id charge;
  std::int64_t amount = 0;
  std::int64_t created = 0;
  std::string currency;
  std::string reason;
  metadata_list metadata;
};

/// The first answer given under an Idempotency-Key.
struct saved_answer {
  std::string key;
  /// "POST /v1/payment_intents".
  std::string endpoint;
  /// SHA-256 of the sorted decoded parameters.
  std::string fingerprint;
  int status = 0;
  std::string body;
  std::string request_id;
};

/// How a test payment method behaves when confirmed.
struct card_outcome {
  /// Empty when the charge succeeds.
  std::string_view code;
  std::string_view decline_code;
  std::string_view message;
};

std::optional<card_outcome> test_payment_method(std::string_view pm) {
  static const std::map<std::string_view, card_outcome, std::less<>> declines{
    {"pm_card_chargeDeclined", {"card_declined", "generic_decline", "Your card was declined."}},
    {"pm_card_chargeDeclinedInsufficientFunds",
     {"card_declined", "insufficient_funds", "Your card has insufficient funds."}},
    {"pm_card_chargeDeclinedLostCard", {"card_declined", "lost_card", "Your card was declined."}},
    {"pm_card_chargeDeclinedStolenCard", {"card_declined", "stolen_card", "Your card was declined."}},
    {"pm_card_chargeDeclinedFraudulent", {"card_declined", "fraudulent", "Your card was declined."}},
    {"pm_card_chargeDeclinedExpiredCard", {"expired_card", "expired_card", "Your card has expired."}},
    {"pm_card_chargeDeclinedIncorrectCvc",
     {"incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."}},
    {"pm_card_chargeDeclinedProcessingError",
     {"processing_error", "processing_error",
      "An error occurred while processing your card. Try again in a little bit."}},
  };
  if (auto it = declines.find(pm); it != declines.end())
    return it->second;
  auto starts = [&](std::string_view prefix) { return pm.substr(0, prefix.size()) == prefix; };
  if (starts("pm_card_visa") || starts("pm_card_mastercard") || pm == "pm_card_amex"
      || pm == "pm_card_discover")
    return card_outcome{};
  return std::nullopt;
}

// -- JSON of the objects ----------------------------------------------------------

void append_string_or_null(std::string& out, std::string_view s) {
  if (s.empty())
    out += "null";
  else
    json::append_quoted(out, s);
}

void append_metadata(std::string& out, const metadata_list& metadata) {
  out += '{';
  for (std::size_t i = 0; i < metadata.size(); ++i) {
    if (i > 0)
      out += ',';
    json::append_quoted(out, metadata[i].first);
    out += ':';
    json::append_quoted(out, metadata[i].second);
  }
  out += '}';
}

void append_payment_method(std::string& out, std::string_view pm) {
  out += "{\"id\":";
  json::append_quoted(out, pm);
  out += ",\"object\":\"payment_method\",\"type\":\"card\"}";
}

card_outcome failure_of(const payment_intent& pi) {
  auto outcome = test_payment_method(pi.failed_payment_method);
  if (outcome && !outcome->code.empty())
    return *outcome;
  return {"card_declined", "generic_decline", "Your card was declined."};
}

/// The members of a card error after `{`: shared by `last_payment_error` and
/// the `error` object of a 402.
void append_card_error_members(std::string& out, const payment_intent& pi) {
  auto failure = failure_of(pi);
  out += "\"charge\":";
  append_string_or_null(out, pi.latest_charge.view());
  out += ",\"code\":";
  json::append_quoted(out, failure.code);
  out += ",\"decline_code\":";
  json::append_quoted(out, failure.decline_code);
  out += ",\"doc_url\":";
  json::append_quoted(out, doc_url(failure.code));
  out += ",\"message\":";
  json::append_quoted(out, failure.message);
  out += ",\"payment_method\":";
  append_payment_method(out, pi.failed_payment_method);
}

void append_intent(std::string& out, const payment_intent& pi) {
  out += "{\"id\":";
  json::append_quoted(out, pi.id.view());
  out += ",\"object\":\"payment_intent\",\"amount\":";
  out += std::to_string(pi.amount);
  out += ",\"amount_capturable\":0,\"amount_received\":";
  out += std::to_string(pi.amount_received);
  out += ",\"canceled_at\":";
  out += pi.canceled_at ? std::to_string(pi.canceled_at) : "null";
  out += ",\"cancellation_reason\":";
  append_string_or_null(out, pi.cancellation_reason);
  out += ",\"capture_method\":\"automatic\",\"confirmation_method\":\"automatic\",\"created\":";
  out += std::to_string(pi.created);
  out += ",\"currency\":";
  json::append_quoted(out, pi.currency);
  out += ",\"description\":";
  append_string_or_null(out, pi.description);
  out += ",\"last_payment_error\":";
  if (pi.failed_payment_method.empty()) {
    out += "null";
  } else {
    out += '{';
    append_card_error_members(out, pi);
    out += ",\"type\":\"card_error\"}";
  }
  out += ",\"latest_charge\":";
  append_string_or_null(out, pi.latest_charge.view());
  out += ",\"livemode\":false,\"metadata\":";
  append_metadata(out, pi.metadata);
  out += ",\"payment_method\":";
  append_string_or_null(out, pi.payment_method);
  out += ",\"payment_method_types\":[\"card\"],\"status\":";
  json::append_quoted(out, name_of(pi.status));
  out += '}';
}

std::string intent_json(const payment_intent& pi) {
  std::string out;
  out.reserve(700);
  append_intent(out, pi);
  return out;
}

void append_refund(std::string& out, const refund& r) {
  out += "{\"id\":";
  json::append_quoted(out, r.id.view());
  out += ",\"object\":\"refund\",\"amount\":";
  out += std::to_string(r.amount);
  out += ",\"balance_transaction\":null,\"charge\":";
  append_string_or_null(out, r.charge.view());
  out += ",\"created\":";
  out += std::to_string(r.created);
  out += ",\"currency\":";
  json::append_quoted(out, r.currency);
  out += ",\"metadata\":";
  append_metadata(out, r.metadata);
  out += ",\"payment_intent\":";
  json::append_quoted(out, r.payment_intent.view());
  out += ",\"reason\":";
  append_string_or_null(out, r.reason);
  out += ",\"receipt_number\":null,\"status\":\"succeeded\"}";
}

// -- the records ----------------------------------------------------------------

/// Everything the mock knows, in creation order, with indexes by id. Objects
/// are only ever appended (an intent changes in place), so the indexes may
/// hold views of the ids stored inside them.
struct ledger {
  std::deque<payment_intent> intents;
  std::unordered_map<std::string_view, std::size_t> intent_at;
  std::deque<refund> refunds;
  std::unordered_map<std::string_view, std::size_t> refund_at;
  /// Oldest first; the oldest is forgotten beyond `max_keys`, as Stripe
  /// forgets keys after a day.
  std::deque<saved_answer> answers;
  std::unordered_map<std::string_view, const saved_answer*> answer_for;
  std::size_t max_keys = 200000;

  payment_intent* find_intent(std::string_view id) {
    auto it = intent_at.find(id);
    return it == intent_at.end() ? nullptr : &intents[it->second];
  }
  const refund* find_refund(std::string_view id) const {
    auto it = refund_at.find(id);
    return it == refund_at.end() ? nullptr : &refunds[it->second];
  }
  const saved_answer* find_answer(std::string_view key) const {
    auto it = answer_for.find(key);
    return it == answer_for.end() ? nullptr : it->second;
  }

  payment_intent& add(payment_intent pi) {
    intents.push_back(std::move(pi));
    intent_at.emplace(intents.back().id.view(), intents.size() - 1);
    return intents.back();
  }

  const refund& add(refund r, payment_intent& pi) {
    refunds.push_back(std::move(r));
    refund_at.emplace(refunds.back().id.view(), refunds.size() - 1);
    pi.refunded += refunds.back().amount;
    pi.refunds.push_back(static_cast<std::uint32_t>(refunds.size() - 1));
    return refunds.back();
  }

  void add(saved_answer a) {
    answers.push_back(std::move(a));
    // The index's key views the stored record's own key, so an entry of a
    // reused key must go before the new one comes in.
    answer_for.erase(answers.back().key);
    answer_for.emplace(answers.back().key, &answers.back());
    while (answers.size() > max_keys) {
      const auto& oldest = answers.front();
      if (auto it = answer_for.find(oldest.key); it != answer_for.end() && it->second == &oldest)
        answer_for.erase(it);
      answers.pop_front();
    }
  }
};

// -- the state file -----------------------------------------------------------------

std::string intent_line(const payment_intent& pi) {
  std::string out = "{\"type\":\"intent\",\"id\":";
  json::append_quoted(out, pi.id.view());
  out += ",\"amount\":" + std::to_string(pi.amount);
  out += ",\"amountReceived\":" + std::to_string(pi.amount_received);
  out += ",\"created\":" + std::to_string(pi.created);
  out += ",\"canceledAt\":" + std::to_string(pi.canceled_at);
  out += ",\"status\":";
  json::append_quoted(out, name_of(pi.status));
  for (auto [name, value] :
       {std::pair<const char*, std::string_view>{"latestCharge", pi.latest_charge.view()},
        {"currency", pi.currency},
        {"paymentMethod", pi.payment_method},
        {"failedPaymentMethod", pi.failed_payment_method},
        {"description", pi.description},
        {"cancellationReason", pi.cancellation_reason}}) {
    out += ",\"";
    out += name;
    out += "\":";
    json::append_quoted(out, value);
  }
  out += ",\"metadata\":";
  append_metadata(out, pi.metadata);
  out += "}\n";
  return out;
}

std::string refund_line(const refund& r) {
  std::string out = "{\"type\":\"refund\",\"id\":";
  json::append_quoted(out, r.id.view());
  out += ",\"paymentIntent\":";
  json::append_quoted(out, r.payment_intent.view());
  out += ",\"charge\":";
  json::append_quoted(out, r.charge.view());
  out += ",\"amount\":" + std::to_string(r.amount);
  out += ",\"created\":" + std::to_string(r.created);
  out += ",\"currency\":";
  json::append_quoted(out, r.currency);
  out += ",\"reason\":";
  json::append_quoted(out, r.reason);
  out += ",\"metadata\":";
  append_metadata(out, r.metadata);
  out += "}\n";
  return out;
}

std::string answer_line(const saved_answer& a) {
  std::string out = "{\"type\":\"idempotency\",\"key\":";
  json::append_quoted(out, a.key);
  out += ",\"endpoint\":";
  json::append_quoted(out, a.endpoint);
  out += ",\"fingerprint\":";
  json::append_quoted(out, a.fingerprint);
  out += ",\"status\":" + std::to_string(a.status);
  out += ",\"requestId\":";
  json::append_quoted(out, a.request_id);
  out += ",\"body\":";
  json::append_quoted(out, a.body);
  out += "}\n";
  return out;
}

// Reads one state line into `book`; the reason when it is malformed.
std::optional<std::string> restore_line(std::string_view line, ledger& book) {
  rapidjson::Document doc;
  if (auto problem = json::parse_strict(line, doc))
    return "not JSON: " + *problem;
  if (!doc.IsObject())
    return std::string{"not an object"};
  auto text = [&](const char* name, std::string& out) {
    if (!doc.HasMember(name) || !doc[name].IsString())
      return false;
    out.assign(doc[name].GetString(), doc[name].GetStringLength());
    return true;
  };
  auto integer = [&](const char* name, std::int64_t& out) {
    if (!doc.HasMember(name) || !doc[name].IsInt64())
      return false;
    out = doc[name].GetInt64();
    return true;
  };
  auto id = [&](const char* name, object_id& out) {
    std::string s;
    return text(name, s) && out.assign(s);
  };
  auto metadata = [&](metadata_list& out) {
    if (!doc.HasMember("metadata") || !doc["metadata"].IsObject())
      return false;
    for (auto it = doc["metadata"].MemberBegin(); it != doc["metadata"].MemberEnd(); ++it) {
      if (!it->value.IsString())
        return false;
      out.emplace_back(std::string{it->name.GetString(), it->name.GetStringLength()},
                       std::string{it->value.GetString(), it->value.GetStringLength()});
    }
    std::sort(out.begin(), out.end());
    return true;
  };
  std::string type;
  if (!text("type", type))
    return std::string{"no type"};
  if (type == "intent") {
    payment_intent pi;
    std::string status;
    if (!id("id", pi.id) || pi.id.empty() || !id("latestCharge", pi.latest_charge)
        || !integer("amount", pi.amount) || !integer("amountReceived", pi.amount_received)
        || !integer("created", pi.created) || !integer("canceledAt", pi.canceled_at)
        || !text("status", status) || !text("currency", pi.currency)
        || !text("paymentMethod", pi.payment_method)
        || !text("failedPaymentMethod", pi.failed_payment_method)
        || !text("description", pi.description)
        || !text("cancellationReason", pi.cancellation_reason) || !metadata(pi.metadata))
      return std::string{"an intent line lacks a field or has one of the wrong type"};
    auto s = status_named(status);
    if (!s)
      return "unknown intent status '" + status + "'";
    pi.status = *s;
    if (auto* known = book.find_intent(pi.id.view())) {
      // A change: the refunds are kept from the refund lines.
      pi.refunded = known->refunded;
      pi.refunds = std::move(known->refunds);
      *known = std::move(pi);
    } else {
      book.add(std::move(pi));
    }
    return std::nullopt;
  }
  if (type == "refund") {
    refund r;
    if (!id("id", r.id) || r.id.empty() || !id("paymentIntent", r.payment_intent) || !id("charge", r.charge)
        || !integer("amount", r.amount) || !integer("created", r.created) || !text("currency", r.currency)
        || !text("reason", r.reason) || !metadata(r.metadata))
      return std::string{"a refund line lacks a field or has one of the wrong type"};
    auto* pi = book.find_intent(r.payment_intent.view());
    if (!pi)
      return "a refund of an unknown payment intent '" + std::string{r.payment_intent.view()} + "'";
    if (book.find_refund(r.id.view()))
      return "refund '" + std::string{r.id.view()} + "' appears twice";
    book.add(std::move(r), *pi);
    return std::nullopt;
  }
  if (type == "idempotency") {
    saved_answer a;
    std::int64_t status = 0;
    if (!text("key", a.key) || a.key.empty() || !text("endpoint", a.endpoint)
        || !text("fingerprint", a.fingerprint) || !integer("status", status) || !text("body", a.body)
        || !text("requestId", a.request_id) || status < 100 || status > 599)
      return std::string{"an idempotency line lacks a field or has one of the wrong type"};
    a.status = static_cast<int>(status);
    book.add(std::move(a));
    return std::nullopt;
  }
  return "unknown type '" + type + "'";
}

/// The append-only state file. Each call's lines go out in one write(2), so
/// a kill -9 leaves whole lines behind, never half a record.
class journal {
public:
  ~journal() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  bool open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd_ >= 0;
  }
  void write(const std::string& lines) {
    if (fd_ < 0 || lines.empty())
      return;
    std::size_t done = 0;
    while (done < lines.size()) {
      auto n = ::write(fd_, lines.data() + done, lines.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        log::error("payments-mock cannot write its state file", {{"error", std::strerror(errno)}});
        return;
      }
      done += static_cast<std::size_t>(n);
    }
  }

private:
  int fd_ = -1;
};

// -- the mock ------------------------------------------------------------------------

/// The secret keys the mock accepts: those of --secret-key, replaced at run
/// time through /mock/keys so that a test can revoke a key as Stripe would
/// after a rotation. None: any `sk_test_…` key.
class accepted_keys {
public:
  void replace(std::vector<std::string> keys) {
    std::lock_guard<std::mutex> guard{mutex_};
    keys_ = std::move(keys);
  }

  bool accepts(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mutex_};
    if (keys_.empty())
      return key.rfind("sk_test_", 0) == 0 && key.size() > 8;
    // Every key is compared, so the time taken does not say which one matched.
    bool match = false;
    for (const auto& accepted : keys_)
      match = http::constant_time_equal(key, accepted) || match;
    return match;
  }

  /// How many keys are accepted and whether any test key is; never a key.
  std::string to_json() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return "{\"accepted\":" + std::to_string(keys_.size())
           + ",\"anyTestKey\":" + (keys_.empty() ? "true" : "false") + "}";
  }

private:
  mutable std::mutex mutex_;
  std::vector<std::string> keys_;
};

struct payments_mock {
  accepted_keys keys;
  std::size_t max_objects = 1000000;
  faults f;

  /// Guards `book`, `state` and `id_rng`.
  std::mutex mutex;
  ledger book;
  journal state;
  std::mt19937_64 id_rng{std::random_device{}()};

  std::mutex fault_mutex;
  std::mt19937_64 fault_rng{std::random_device{}()};
  timer_thread timers;

  /// `prefix` and 24 random letters and digits, as Stripe's ids look.
  std::string new_id(std::string_view prefix) {
    static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string id{prefix};
    for (int i = 0; i < 24; ++i)
      id += alphabet[id_rng() % 62];
    return id;
  }

  // True with probability `rate`.
  bool draw(double rate) {
    if (rate <= 0)
      return false;
    std::lock_guard<std::mutex> guard{fault_mutex};
    return std::uniform_real_distribution<double>(0, 1)(fault_rng) < rate;
  }

  // Sends `res` once the latency fault has passed.
  void deliver(const http::reply_fn& reply, http::response res) {
    long delay = f.latency_ms.load();
    if (long jitter = f.jitter_ms.load(); jitter > 0) {
      std::lock_guard<std::mutex> guard{fault_mutex};
      delay += static_cast<long>(fault_rng() % static_cast<unsigned long>(jitter + 1));
    }
    if (delay <= 0)
      return reply(std::move(res));
    timers.at(std::chrono::steady_clock::now() + std::chrono::milliseconds(delay),
              [reply, res = std::move(res)]() mutable { reply(std::move(res)); });
  }
};

/// One /v1 request on its way through an endpoint.
struct v1_call {
  const http::request& req;
  std::vector<form_field> fields;
  std::int64_t now = 0;
  /// State lines of this call, written together with its idempotency record.
  std::string lines;
};

using operation = std::function<answer(payments_mock&, v1_call&)>;

// -- authentication -------------------------------------------------------------------

// The key as Stripe shows it in an error: its prefix and last four characters.
std::string redacted(std::string_view key) {
  std::size_t shown = 0;
  for (std::string_view prefix : {"sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_"})
    if (key.substr(0, prefix.size()) == prefix)
      shown = prefix.size();
  std::string out{key.substr(0, shown)};
  auto rest = key.size() - shown;
  if (rest > 8) {
    out.append(rest - 4, '*');
    for (char c : key.substr(key.size() - 4))
      out += std::isalnum(static_cast<unsigned char>(c)) ? c : '*';
  } else {
    out.append(rest, '*');
  }
  return out;
}

// The secret key of `Authorization: Bearer <key>` or `Basic base64(<key>:)`.
std::string presented_key(const http::request& req) {
  auto value = req.header("authorization");
  auto scheme_is = [&](std::string_view scheme) {
    return value.size() > scheme.size() && starts_with_ignoring_case(value, scheme);
  };
  if (scheme_is("bearer "))
    return std::string{value.substr(7)};
  if (scheme_is("basic ")) {
    auto decoded = crypto::base64_decode(value.substr(6));
    if (!decoded)
      return {};
    return decoded->substr(0, decoded->find(':'));
  }
  return {};
}

std::optional<answer> refuse_key(const payments_mock& m, const http::request& req) {
  auto key = presented_key(req);
  auto refusal = [](std::string message) {
    answer a{401, error_json("invalid_request_error", message), false, {}};
    a.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"Stripe\"");
    return a;
  };
  if (key.empty())
    return refusal("You did not provide an API key. You need to provide your API key in the "
                   "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                   "YOUR_SECRET_KEY').");
  if (!m.keys.accepts(key))
    return refusal("Invalid API Key provided: " + redacted(key));
  return std::nullopt;
}

// -- parameters --------------------------------------------------------------------

/// The parameters one endpoint takes, by shape: `name=v`, `name[]=v`
/// (or `name[0]=v`), `name[key]=v`.
struct accepted {
  std::vector<std::string_view> scalars;
  std::vector<std::string_view> lists;
  std::vector<std::string_view> hashes;
};

struct params {
  std::map<std::string, std::string, std::less<>> scalar;
  std::map<std::string, std::vector<std::string>, std::less<>> list;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>, std::less<>> hash;

  const std::string* get(std::string_view name) const {
    auto it = scalar.find(name);
    return it == scalar.end() ? nullptr : &it->second;
  }
  std::string value_or_empty(std::string_view name) const {
    auto* v = get(name);
    return v ? *v : std::string{};
  }
};

bool contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Sorts the decoded fields into `out` by the shapes `spec` allows.
std::optional<answer> read_params(const std::vector<form_field>& fields, const accepted& spec, params& out) {
  for (const auto& f : fields) {
    std::string_view key = f.key;
    auto open = key.find('[');
    std::string_view base = key.substr(0, open);
    if (base == "expand")
      return invalid("payments-mock does not expand objects: send the request without expand", "expand");
    if (open == std::string_view::npos) {
      if (contains(spec.scalars, base)) {
        out.scalar[std::string{base}] = f.value;
        continue;
      }
      // `metadata=` clears a hash, as at Stripe.
      if (contains(spec.hashes, base) && f.value.empty()) {
        out.hash[std::string{base}];
        continue;
      }
      if (contains(spec.lists, base))
        return invalid("Invalid array", base);
      if (contains(spec.hashes, base))
        return invalid("Invalid hash", base);
      return invalid("Received unknown parameter: " + std::string{key}, key, "parameter_unknown");
    }
    auto sub = key.substr(open + 1);
    if (sub.empty() || sub.back() != ']'
        || sub.substr(0, sub.size() - 1).find_first_of("[]") != std::string_view::npos)
      return invalid("Invalid parameter name: " + std::string{key}, key, "parameter_unknown");
    sub.remove_suffix(1);
    if (contains(spec.lists, base)) {
      if (!sub.empty() && sub.find_first_not_of("0123456789") != std::string_view::npos)
        return invalid("Invalid array", base);
      out.list[std::string{base}].push_back(f.value);
    } else if (contains(spec.hashes, base)) {
      if (sub.empty())
        return invalid("Invalid hash", base);
      out.hash[std::string{base}].emplace_back(std::string{sub}, f.value);
    } else if (contains(spec.scalars, base)) {
      return invalid("Invalid " + std::string{base} + ": a single value is expected", base);
    } else {
      return invalid("Received unknown parameter: " + std::string{key}, key, "parameter_unknown");
    }
  }
  return std::nullopt;
}

bool parse_integer(std::string_view text, std::int64_t& out) {
  if (text.empty() || text.size() > 18)
    return false;
  std::size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size())
    return false;
  std::int64_t v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return false;
    v = v * 10 + (text[i] - '0');
  }
  out = text[0] == '-' ? -v : v;
  return true;
}

std::optional<answer> read_integer(const params& p, std::string_view name, std::int64_t min, std::int64_t max,
                                   bool required, std::int64_t& out) {
  auto* v = p.get(name);
  if (!v) {
    if (required)
      return invalid("Missing required param: " + std::string{name} + ".", name, "parameter_missing");
    return std::nullopt;
  }
  if (!parse_integer(*v, out))
    return invalid("Invalid integer: " + *v, name, "parameter_invalid_integer");
  if (out < min)
    return invalid("This value must be greater than or equal to " + std::to_string(min) + ".", name,
                   "parameter_invalid_integer");
  if (out > max)
    return invalid("This value must be less than or equal to " + std::to_string(max) + ".", name,
                   "parameter_invalid_integer");
  return std::nullopt;
}

std::optional<answer> read_bool(const params& p, std::string_view name, bool& out) {
  auto* v = p.get(name);
  if (!v)
    return std::nullopt;
  if (*v == "true")
    out = true;
  else if (*v == "false")
    out = false;
  else
    return invalid("Invalid boolean: " + *v, name);
  return std::nullopt;
}

std::optional<answer> read_choice(const params& p, std::string_view name,
                                  std::initializer_list<std::string_view> allowed, std::string& out) {
  auto* v = p.get(name);
  if (!v)
    return std::nullopt;
  for (auto a : allowed)
    if (*v == a) {
      out = *v;
      return std::nullopt;
    }
  std::string list;
  for (auto a : allowed)
    list += (list.empty() ? "" : ", ") + std::string{a};
  return invalid("Invalid " + std::string{name} + ": must be one of " + list, name);
}

// Stripe's limits: 50 keys, keys up to 40 characters, values up to 500; an
// empty value unsets a key.
std::optional<answer> read_metadata(const params& p, metadata_list& out) {
  auto it = p.hash.find("metadata");
  if (it == p.hash.end())
    return std::nullopt;
  std::map<std::string, std::string> merged;
  for (const auto& [key, value] : it->second) {
    if (key.size() > 40)
      return invalid("Metadata keys can have up to 40 characters: '" + key + "'", "metadata[" + key + "]");
    if (value.size() > 500)
      return invalid("Metadata values can have up to 500 characters", "metadata[" + key + "]");
    if (value.empty())
      merged.erase(key);
    else
      merged[key] = value;
  }
  if (merged.size() > 50)
    return invalid("Metadata can have up to 50 keys", "metadata");
  out.assign(merged.begin(), merged.end());
  return std::nullopt;
}

// -- endpoints ----------------------------------------------------------------------

answer ok(std::string body) {
  return answer{200, std::move(body), true, {}};
}

answer mock_full() {
  answer a{503, error_json("api_error", "the mock is full: raise --max-objects"), false, {}};
  a.headers.emplace_back("Stripe-Should-Retry", "false");
  return a;
}

answer unexpected_state(const payment_intent& pi, std::string message) {
  std::string extra = ",\"payment_intent\":";
  append_intent(extra, pi);
  auto body = error_json("invalid_request_error", message, "payment_intent_unexpected_state", {}, extra);
  return answer{400, std::move(body), true, {}};
}

// Charges the intent's payment method; the card decides the outcome.
answer confirm_intent(payments_mock& m, v1_call& c, payment_intent& pi, const std::string& pm,
                      const card_outcome& card) {
  pi.latest_charge.assign(m.new_id("ch_"));
  if (card.code.empty()) {
    pi.status = intent_status::succeeded;
    pi.amount_received = pi.amount;
    pi.payment_method = pm;
    pi.failed_payment_method.clear();
    c.lines += intent_line(pi);
    return ok(intent_json(pi));
  }
  // A declined confirmation leaves the intent waiting for another method,
  // with the failed one only in last_payment_error.
  pi.status = intent_status::requires_payment_method;
  pi.payment_method.clear();
  pi.failed_payment_method = pm;
  c.lines += intent_line(pi);
  std::string body = "{\"error\":{";
  append_card_error_members(body, pi);
  body += ",\"payment_intent\":";
  append_intent(body, pi);
  body += ",\"type\":\"card_error\"}}";
  return answer{402, std::move(body), true, {}};
}

answer no_such_payment_method(std::string_view pm) {
  return invalid("No such PaymentMethod: '" + std::string{pm} + "'", "payment_method", "resource_missing");
}

std::optional<answer> check_card_only(const params& p) {
  if (auto it = p.list.find("payment_method_types"); it != p.list.end())
    for (const auto& t : it->second)
      if (t != "card")
        return invalid("The payment method type \"" + t + "\" is not supported by payments-mock: use card",
                       "payment_method_types");
  return std::nullopt;
}

answer create_intent(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields,
                             {{"amount", "currency", "payment_method", "confirm", "description",
                               "capture_method", "confirmation_method", "receipt_email",
                               "statement_descriptor",
                               "statement_descriptor_suffix", "off_session", "error_on_requires_action",
                               "return_url"},
                              {"payment_method_types"},
                              {"metadata"}},
                             p))
    return *bad;
  std::int64_t amount = 0;
  if (auto bad = read_integer(p, "amount", 1, max_amount, true, amount))
    return *bad;
  auto* currency = p.get("currency");
  if (!currency)
    return invalid("Missing required param: currency.", "currency", "parameter_missing");
  if (currency->size() != 3 || !std::all_of(currency->begin(), currency->end(), [](char ch) {
        return std::isalpha(static_cast<unsigned char>(ch));
      }))
    return invalid("Invalid currency: " + *currency + ".", "currency");
  bool confirm = false;
  bool ignored = false;
  std::string choice;
  if (auto bad = read_bool(p, "confirm", confirm))
    return *bad;
  for (auto name : {"off_session", "error_on_requires_action"})
    if (auto bad = read_bool(p, name, ignored))
      return *bad;
  if (auto bad = read_choice(p, "capture_method", {"automatic", "automatic_async"}, choice))
    return *bad;
  if (auto bad = read_choice(p, "confirmation_method", {"automatic"}, choice))
    return *bad;
  if (auto bad = check_card_only(p))
    return *bad;
  metadata_list metadata;
  if (auto bad = read_metadata(p, metadata))
    return *bad;
  auto pm = p.value_or_empty("payment_method");
  if (confirm && pm.empty())
    return invalid("Missing required param: payment_method.", "payment_method", "parameter_missing");
  std::optional<card_outcome> card;
  if (!pm.empty() && !(card = test_payment_method(pm)))
    return no_such_payment_method(pm);

  if (m.book.intents.size() >= m.max_objects)
    return mock_full();
  payment_intent pi;
  std::string id;
  do
    id = m.new_id("pi_");
  while (m.book.find_intent(id));
  pi.id.assign(id);
  pi.amount = amount;
  pi.created = c.now;
  for (char ch : *currency)
    pi.currency += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  pi.payment_method = pm;
  pi.description = p.value_or_empty("description");
  pi.metadata = std::move(metadata);
  pi.status = pm.empty() ? intent_status::requires_payment_method : intent_status::requires_confirmation;
  auto& stored = m.book.add(std::move(pi));
  if (!confirm) {
    c.lines += intent_line(stored);
    return ok(intent_json(stored));
  }
  return confirm_intent(m, c, stored, pm, *card);
}

answer confirm_existing_intent(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields,
                             {{"payment_method", "off_session", "error_on_requires_action", "return_url",
                               "receipt_email"},
                              {"payment_method_types"},
                              {}},
                             p))
    return *bad;
  bool ignored = false;
  for (auto name : {"off_session", "error_on_requires_action"})
    if (auto bad = read_bool(p, name, ignored))
      return *bad;
  if (auto bad = check_card_only(p))
    return *bad;
  const auto& id = c.req.params.at("id");
  auto* pi = m.book.find_intent(id);
  if (!pi)
    return no_such("payment_intent", id, "intent");
  auto pm = p.value_or_empty("payment_method");
  if (pm.empty())
    pm = pi->payment_method;
  std::optional<card_outcome> card;
  if (!pm.empty() && !(card = test_payment_method(pm)))
    return no_such_payment_method(pm);
  if (pi->status != intent_status::requires_payment_method
      && pi->status != intent_status::requires_confirmation)
    return unexpected_state(*pi, "You cannot confirm this PaymentIntent because it has a status of "
                                   + std::string{name_of(pi->status)} + ".");
  if (pm.empty())
    return unexpected_state(*pi, "You cannot confirm this PaymentIntent because it's missing a payment "
                                 "method. Update the PaymentIntent with a payment method and then "
                                 "confirm it again.");
  return confirm_intent(m, c, *pi, pm, *card);
}

answer retrieve_intent(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields, {{"client_secret"}, {}, {}}, p))
    return *bad;
  const auto& id = c.req.params.at("id");
  auto* pi = m.book.find_intent(id);
  if (!pi)
    return no_such("payment_intent", id, "intent");
  return ok(intent_json(*pi));
}

answer cancel_intent(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields, {{"cancellation_reason"}, {}, {}}, p))
    return *bad;
  std::string reason;
  if (auto bad = read_choice(p, "cancellation_reason",
                             {"duplicate", "fraudulent", "requested_by_customer", "abandoned"}, reason))
    return *bad;
  const auto& id = c.req.params.at("id");
  auto* pi = m.book.find_intent(id);
  if (!pi)
    return no_such("payment_intent", id, "intent");
  if (pi->status == intent_status::succeeded || pi->status == intent_status::canceled)
    return unexpected_state(*pi, "You cannot cancel this PaymentIntent because it has a status of "
                                   + std::string{name_of(pi->status)}
                                   + ". Only a PaymentIntent with one of the following statuses may be "
                                     "canceled: requires_payment_method, requires_capture, "
                                     "requires_confirmation, requires_action, processing.");
  pi->status = intent_status::canceled;
  pi->canceled_at = c.now;
  pi->cancellation_reason = reason;
  c.lines += intent_line(*pi);
  return ok(intent_json(*pi));
}

/// One page of a list shown newest first: positions in creation order.
struct page {
  std::vector<std::size_t> positions;
  bool has_more = false;
};

struct page_request {
  std::int64_t limit = 10;
  std::string starting_after;
  std::string ending_before;
};

std::optional<answer> read_page_request(const params& p, page_request& out) {
  if (auto bad = read_integer(p, "limit", 1, 100, false, out.limit))
    return bad;
  out.starting_after = p.value_or_empty("starting_after");
  out.ending_before = p.value_or_empty("ending_before");
  if (!out.starting_after.empty() && !out.ending_before.empty())
    return invalid("You may only specify one of these parameters: starting_after, ending_before.",
                   "starting_after");
  return std::nullopt;
}

// `count` objects in creation order; `find` gives an id's position or
// nullopt. Returns nullopt when the cursor names no object of the list.
template <class Find>
std::optional<page> pick_page(std::size_t count, const page_request& r, Find find) {
  page out;
  auto limit = static_cast<std::size_t>(r.limit);
  if (!r.ending_before.empty()) {
    auto at = find(r.ending_before);
    if (!at)
      return std::nullopt;
    // The `limit` objects just newer than the cursor, newest first.
    std::size_t newer = count - 1 - *at;
    std::size_t take = std::min(newer, limit);
    for (std::size_t k = take; k > 0; --k)
      out.positions.push_back(*at + k);
    out.has_more = newer > limit;
    return out;
  }
  std::size_t older = count;
  if (!r.starting_after.empty()) {
    auto at = find(r.starting_after);
    if (!at)
      return std::nullopt;
    older = *at;
  }
  std::size_t take = std::min(older, limit);
  for (std::size_t k = 0; k < take; ++k)
    out.positions.push_back(older - 1 - k);
  out.has_more = older > limit;
  return out;
}

template <class Render>
std::string list_json(std::string_view url, const page& pg, Render render) {
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (std::size_t i = 0; i < pg.positions.size(); ++i) {
    if (i > 0)
      out += ',';
    render(out, pg.positions[i]);
  }
  out += "],\"has_more\":";
  out += pg.has_more ? "true" : "false";
  out += ",\"url\":";
  json::append_quoted(out, url);
  out += '}';
  return out;
}

answer bad_cursor(std::string_view object, const page_request& r) {
  bool after = !r.starting_after.empty();
  const auto& cursor = after ? r.starting_after : r.ending_before;
  return invalid("No such " + std::string{object} + ": '" + cursor + "'",
                 after ? "starting_after" : "ending_before", "resource_missing");
}

answer list_intents(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields, {{"limit", "starting_after", "ending_before"}, {}, {}}, p))
    return *bad;
  page_request r;
  if (auto bad = read_page_request(p, r))
    return *bad;
  auto pg = pick_page(m.book.intents.size(), r, [&](const std::string& id) -> std::optional<std::size_t> {
    auto it = m.book.intent_at.find(id);
    if (it == m.book.intent_at.end())
      return std::nullopt;
    return it->second;
  });
  if (!pg)
    return bad_cursor("payment_intent", r);
  return ok(list_json("/v1/payment_intents", *pg,
                      [&](std::string& out, std::size_t at) { append_intent(out, m.book.intents[at]); }));
}

answer create_refund(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields, {{"payment_intent", "amount", "reason"}, {}, {"metadata"}}, p))
    return *bad;
  auto* intent_id = p.get("payment_intent");
  if (!intent_id || intent_id->empty())
    return invalid("Missing required param: payment_intent.", "payment_intent", "parameter_missing");
  std::int64_t amount = 0;
  bool whole = !p.get("amount");
  if (auto bad = read_integer(p, "amount", 1, max_amount, false, amount))
    return *bad;
  std::string reason;
  if (auto bad = read_choice(p, "reason", {"duplicate", "fraudulent", "requested_by_customer"}, reason))
    return *bad;
  metadata_list metadata;
  if (auto bad = read_metadata(p, metadata))
    return *bad;
  auto* pi = m.book.find_intent(*intent_id);
  if (!pi)
    return no_such("payment_intent", *intent_id, "payment_intent");
  if (pi->status != intent_status::succeeded)
    return unexpected_state(*pi, "This PaymentIntent (" + *intent_id
                                   + ") does not have a successful charge to refund.");
  auto left = pi->amount_received - pi->refunded;
  if (left <= 0)
    return answer{400,
                  error_json("invalid_request_error",
                             "Charge " + std::string{pi->latest_charge.view()}
                               + " has already been refunded.",
                             "charge_already_refunded"),
                  true, {}};
  if (whole)
    amount = left;
  if (amount > left)
    return answer{400,
                  error_json("invalid_request_error",
                             "Refund amount (" + std::to_string(amount)
                               + ") is greater than unrefunded amount on charge (" + std::to_string(left)
                               + ")",
                             "amount_too_large", "amount"),
                  true, {}};
  if (m.book.refunds.size() >= m.max_objects)
    return mock_full();
  refund r;
  std::string id;
  do
    id = m.new_id("re_");
  while (m.book.find_refund(id));
  r.id.assign(id);
  r.payment_intent = pi->id;
  r.charge = pi->latest_charge;
  r.amount = amount;
  r.created = c.now;
  r.currency = pi->currency;
  r.reason = reason;
  r.metadata = std::move(metadata);
  const auto& stored = m.book.add(std::move(r), *pi);
  c.lines += refund_line(stored);
  std::string body;
  append_refund(body, stored);
  return ok(std::move(body));
}

answer retrieve_refund(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad = read_params(c.fields, {}, p))
    return *bad;
  const auto& id = c.req.params.at("id");
  const auto* r = m.book.find_refund(id);
  if (!r)
    return no_such("refund", id, "id");
  std::string body;
  append_refund(body, *r);
  return ok(std::move(body));
}

answer list_refunds(payments_mock& m, v1_call& c) {
  params p;
  if (auto bad =
        read_params(c.fields, {{"limit", "starting_after", "ending_before", "payment_intent"}, {}, {}}, p))
    return *bad;
  page_request r;
  if (auto bad = read_page_request(p, r))
    return *bad;
  auto render = [&](std::string& out, std::size_t at) { append_refund(out, m.book.refunds[at]); };
  auto filter = p.value_or_empty("payment_intent");
  if (filter.empty()) {
    auto pg = pick_page(m.book.refunds.size(), r, [&](const std::string& id) -> std::optional<std::size_t> {
      auto it = m.book.refund_at.find(id);
      if (it == m.book.refund_at.end())
        return std::nullopt;
      return it->second;
    });
    if (!pg)
      return bad_cursor("refund", r);
    return ok(list_json("/v1/refunds", *pg, render));
  }
  const auto* pi = m.book.find_intent(filter);
  if (!pi)
    return no_such("payment_intent", filter, "payment_intent");
  // The intent's own refunds, a short list searched in place.
  const auto& mine = pi->refunds;
  auto pg = pick_page(mine.size(), r, [&](const std::string& id) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < mine.size(); ++i)
      if (m.book.refunds[mine[i]].id.view() == id)
        return i;
    return std::nullopt;
  });
  if (!pg)
    return bad_cursor("refund", r);
  for (auto& at : pg->positions)
    at = mine[at];
  return ok(list_json("/v1/refunds", *pg, render));
}

// -- the /v1 pipeline ------------------------------------------------------------------

std::string fingerprint_of(std::vector<form_field> fields) {
  std::sort(fields.begin(), fields.end());
  std::string text;
  for (const auto& f : fields) {
    // Lengths first, so no choice of names and values can collide.
    text += std::to_string(f.key.size()) + ':' + f.key + std::to_string(f.value.size()) + ':' + f.value;
  }
  return crypto::sha256_hex(text);
}

answer idempotency_conflict(std::string_view key) {
  return answer{400,
                error_json("idempotency_error",
                           "Keys for idempotent requests can only be used with the same parameters they "
                           "were first used with. Try using a key other than '"
                             + std::string{key} + "' if you meant to execute a different request."),
                false, {}};
}

// Authentication, parameters, idempotency, then the endpoint, under the lock.
answer run(payments_mock& m, const operation& op, const http::request& req, const std::string& request_id) {
  if (auto refusal = refuse_key(m, req))
    return *refusal;
  v1_call c{req, {}, unix_ms_now() / 1000, {}};
  if (!parse_form(req.query, c.fields))
    return invalid("Invalid request: the query string is not valid form encoding (UTF-8)");
  if (req.method == "POST" && !req.body.empty()) {
    if (!is_form_content_type(req.header("content-type")))
      return invalid("Invalid request: send the parameters as Content-Type: "
                     "application/x-www-form-urlencoded");
    if (!parse_form(req.body, c.fields))
      return invalid("Invalid request: the body is not valid form encoding (UTF-8)");
  }
  std::string key{req.header("idempotency-key")};
  if (req.method != "POST" || key.empty()) {
    std::lock_guard<std::mutex> guard{m.mutex};
    auto a = op(m, c);
    m.state.write(c.lines);
    return a;
  }
  if (key.size() > 255)
    return invalid("Invalid Idempotency-Key: it must be no longer than 255 characters", "idempotency_key");
  if (!clean_utf8(key) || std::any_of(key.begin(), key.end(), [](char ch) {
        return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
      }))
    return invalid("Invalid Idempotency-Key: use printable UTF-8", "idempotency_key");
  auto endpoint = req.method + " " + req.path;
  auto fingerprint = fingerprint_of(c.fields);
  std::lock_guard<std::mutex> guard{m.mutex};
  if (const auto* saved = m.book.find_answer(key)) {
    if (saved->endpoint != endpoint || saved->fingerprint != fingerprint)
      return idempotency_conflict(key);
    answer replay{saved->status, saved->body, false, {}};
    replay.headers.emplace_back("Idempotent-Replayed", "true");
    replay.headers.emplace_back("Original-Request", saved->request_id);
    return replay;
  }
  auto a = op(m, c);
  if (a.executed) {
    saved_answer record{key, endpoint, fingerprint, a.status, a.body, request_id};
    c.lines += answer_line(record);
    m.book.add(std::move(record));
  }
  m.state.write(c.lines);
  return a;
}

http::response to_response(const answer& a, const http::request& req, const std::string& request_id) {
  http::response res;
  res.status = a.status;
  res.body = a.body;
  res.headers = a.headers;
  res.headers.emplace_back("Request-Id", request_id);
  auto version = req.header("stripe-version");
  bool pinned = !version.empty() && clean_utf8(version);
  res.headers.emplace_back("Stripe-Version",
                           pinned ? std::string{version} : std::string{default_api_version});
  if (auto key = req.header("idempotency-key"); !key.empty() && req.method == "POST" && key.size() <= 255
                                                 && clean_utf8(key))
    res.headers.emplace_back("Idempotency-Key", std::string{key});
  return res;
}

// Wraps an endpoint with the faults: an outage answers at once, an injected
// error before anything happens, a lost reply after it took effect.
http::handler stripe_endpoint(payments_mock& m, operation op) {
  return [&m, op = std::move(op)](http::request& req, http::reply_fn reply) {
    auto request_id = new_request_id();
    if (m.f.outage.load()) {
      answer a{503, error_json("api_error", "payments-mock is unavailable (injected outage)"), false, {}};
      a.headers.emplace_back("Stripe-Should-Retry", "true");
      return reply(to_response(a, req, request_id));
    }
    if (m.draw(m.f.error_rate.load())) {
      answer a{500, error_json("api_error", "An unknown error occurred (injected by payments-mock)"), false,
               {}};
      a.headers.emplace_back("Stripe-Should-Retry", "true");
      return m.deliver(reply, to_response(a, req, request_id));
    }
    auto res = to_response(run(m, op, req, request_id), req, request_id);
    // The request took effect; the client never learns it did.
    if (m.draw(m.f.lost_reply_rate.load()))
      res.reset = true;
    m.deliver(reply, std::move(res));
  };
}

std::optional<std::string> set_faults(faults& f, const rapidjson::Value& b) {
  if (!b.IsObject())
    return std::string{"send an object"};
  for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it) {
    std::string_view name{it->name.GetString(), it->name.GetStringLength()};
    if (name != "latencyMs" && name != "jitterMs" && name != "errorRate" && name != "lostReplyRate"
        && name != "outage")
      return "unknown fault '" + std::string{name} + "'";
  }
  auto millis = [&](const char* n) {
    return !b.HasMember(n) || (b[n].IsInt64() && b[n].GetInt64() >= 0 && b[n].GetInt64() <= max_latency_ms);
  };
  auto rate = [&](const char* n) {
    return !b.HasMember(n) || (b[n].IsNumber() && b[n].GetDouble() >= 0 && b[n].GetDouble() <= 1);
  };
  // Everything is checked before anything changes: a bad request changes nothing.
  for (const char* n : {"latencyMs", "jitterMs"})
    if (!millis(n))
      return std::string{n} + " must be an integer from 0 to " + std::to_string(max_latency_ms);
  for (const char* n : {"errorRate", "lostReplyRate"})
    if (!rate(n))
      return std::string{n} + " must be a number from 0 to 1";
  if (b.HasMember("outage") && !b["outage"].IsBool())
    return std::string{"outage must be a boolean"};
  if (b.HasMember("latencyMs"))
    f.latency_ms = static_cast<long>(b["latencyMs"].GetInt64());
  if (b.HasMember("jitterMs"))
    f.jitter_ms = static_cast<long>(b["jitterMs"].GetInt64());
  if (b.HasMember("errorRate"))
    f.error_rate = b["errorRate"].GetDouble();
  if (b.HasMember("lostReplyRate"))
    f.lost_reply_rate = b["lostReplyRate"].GetDouble();
  if (b.HasMember("outage"))
    f.outage = b["outage"].GetBool();
  return std::nullopt;
}

// `{"accept":["<secret key>", …]}`: the keys accepted from now on, at least
// one, each non-empty; nullopt when `keys` holds them.
std::optional<std::string> read_accepted_keys(const rapidjson::Value& b,
                                              std::vector<std::string>& keys) {
  if (!b.IsObject())
    return std::string{"send an object"};
  for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it) {
    std::string_view name{it->name.GetString(), it->name.GetStringLength()};
    if (name != "accept")
      return "unknown field '" + std::string{name} + "'";
  }
  if (!b.HasMember("accept") || !b["accept"].IsArray() || b["accept"].Empty())
    return std::string{"accept must be an array of at least one secret key"};
  for (const auto& key : b["accept"].GetArray()) {
    if (!key.IsString() || key.GetStringLength() == 0)
      return std::string{"accept must hold non-empty strings"};
    keys.emplace_back(key.GetString(), key.GetStringLength());
  }
  return std::nullopt;
}

http::response with_request_id(http::response res) {
  res.headers.emplace_back("Request-Id", new_request_id());
  return res;
}

void add_routes(http::router& r, payments_mock& m) {
  using http::access;
  using http::body_kind;
  r.add("GET", "/health", access::open, body_kind::none, [](http::request&, http::reply_fn reply) {
    reply(with_request_id(http::json_response(200, R"({"service":"payments-mock","status":"ok"})")));
  });
  r.add("POST", "/v1/payment_intents", access::open, body_kind::none, stripe_endpoint(m, create_intent));
  r.add("GET", "/v1/payment_intents", access::open, body_kind::none, stripe_endpoint(m, list_intents));
  r.add("GET", "/v1/payment_intents/{id}", access::open, body_kind::none,
        stripe_endpoint(m, retrieve_intent));
  r.add("POST", "/v1/payment_intents/{id}/confirm", access::open, body_kind::none,
        stripe_endpoint(m, confirm_existing_intent));
  r.add("POST", "/v1/payment_intents/{id}/cancel", access::open, body_kind::none,
        stripe_endpoint(m, cancel_intent));
  r.add("POST", "/v1/refunds", access::open, body_kind::none, stripe_endpoint(m, create_refund));
  r.add("GET", "/v1/refunds", access::open, body_kind::none, stripe_endpoint(m, list_refunds));
  r.add("GET", "/v1/refunds/{id}", access::open, body_kind::none, stripe_endpoint(m, retrieve_refund));

  r.add("GET", "/mock/faults", access::open, body_kind::none, [&m](http::request&, http::reply_fn reply) {
    reply(with_request_id(http::json_response(200, m.f.to_json())));
  });
  r.add("POST", "/mock/faults", access::open, body_kind::json,
        [&m](http::request& req, http::reply_fn reply) {
          if (auto problem = set_faults(m.f, *req.json))
            return reply(with_request_id(http::error_response(400, "invalid_input", *problem)));
          reply(with_request_id(http::json_response(200, m.f.to_json())));
        });
  r.add("GET", "/mock/keys", access::open, body_kind::none, [&m](http::request&, http::reply_fn reply) {
    reply(with_request_id(http::json_response(200, m.keys.to_json())));
  });
  r.add("POST", "/mock/keys", access::open, body_kind::json,
        [&m](http::request& req, http::reply_fn reply) {
          std::vector<std::string> keys;
          if (auto problem = read_accepted_keys(*req.json, keys))
            return reply(with_request_id(http::error_response(400, "invalid_input", *problem)));
          m.keys.replace(std::move(keys));
          reply(with_request_id(http::json_response(200, m.keys.to_json())));
        });
}

bool parse_rate(const std::string& text, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(text, &used);
    return used == text.size() && out >= 0 && out <= 1;
  } catch (const std::exception&) {
    return false;
  }
}

} // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  long port = 6070;
  long latency = 0;
  long jitter = 0;
  double error_rate = 0;
  double lost_reply_rate = 0;
  bool outage = false;
  long max_objects = 1000000;
  long max_keys = 200000;
  std::string state_file;
  std::vector<std::string> secret_keys;
  http::tls_files tls;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto fail = [&](const std::string& why) {
      std::cerr << "payments-mock: " << why << "\n\n" << usage;
      return 2;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "payments-mock " << AP_VERSION << "\n";
      return 0;
    }
    if (arg == "--outage") {
      outage = true;
      continue;
    }
    if (i + 1 >= argc)
      return fail("unknown argument or missing value: '" + arg + "'");
    std::string v = argv[++i];
    if (arg == "--bind") {
      bind = v;
    } else if (arg == "--port") {
      if (!parse_integer_in(v, 0, 65535, port))
        return fail("--port needs an integer from 0 to 65535");
    } else if (arg == "--latency-ms") {
      if (!parse_integer_in(v, 0, max_latency_ms, latency))
        return fail("--latency-ms needs an integer from 0 to " + std::to_string(max_latency_ms));
    } else if (arg == "--jitter-ms") {
      if (!parse_integer_in(v, 0, max_latency_ms, jitter))
        return fail("--jitter-ms needs an integer from 0 to " + std::to_string(max_latency_ms));
    } else if (arg == "--error-rate") {
      if (!parse_rate(v, error_rate))
        return fail("--error-rate needs a number from 0 to 1");
    } else if (arg == "--lost-reply-rate") {
      if (!parse_rate(v, lost_reply_rate))
        return fail("--lost-reply-rate needs a number from 0 to 1");
    } else if (arg == "--max-objects") {
      if (!parse_integer_in(v, 1, 100000000, max_objects))
        return fail("--max-objects needs an integer from 1 to 100000000");
    } else if (arg == "--max-idempotency-keys") {
      if (!parse_integer_in(v, 1, 100000000, max_keys))
        return fail("--max-idempotency-keys needs an integer from 1 to 100000000");
    } else if (arg == "--state") {
      state_file = v;
    } else if (arg == "--secret-key") {
      if (v.empty())
        return fail("--secret-key needs a key");
      secret_keys.push_back(v);
    } else if (arg == "--tls-cert") {
      tls.cert_file = v;
    } else if (arg == "--tls-key") {
      tls.key_file = v;
    } else {
      return fail("unknown argument '" + arg + "'");
    }
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    std::cerr << "payments-mock: --tls-cert and --tls-key: give both or neither\n\n" << usage;
    return 2;
  }

  payments_mock m;
  m.keys.replace(std::move(secret_keys));
  m.max_objects = static_cast<std::size_t>(max_objects);
  m.book.max_keys = static_cast<std::size_t>(max_keys);
  m.f.latency_ms = latency;
  m.f.jitter_ms = jitter;
  m.f.error_rate = error_rate;
  m.f.lost_reply_rate = lost_reply_rate;
  m.f.outage = outage;
  if (!state_file.empty()) {
    std::ifstream in{state_file};
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty())
        continue;
      if (auto problem = restore_line(line, m.book)) {
        log::error("payments-mock state file has a malformed line",
                   {{"file", state_file}, {"line", std::to_string(n)}, {"problem", *problem}});
        return 1;
      }
    }
    if (!m.state.open(state_file)) {
      log::error("payments-mock cannot write its state file",
                 {{"file", state_file}, {"error", std::strerror(errno)}});
      return 1;
    }
    log::info("payments-mock state loaded", {{"intents", std::to_string(m.book.intents.size())},
                                             {"refunds", std::to_string(m.book.refunds.size())},
                                             {"idempotencyKeys", std::to_string(m.book.answers.size())}});
  }

  http::router routes;
  add_routes(routes, m);
  metrics::registry registry;
  http::server_limits limits;
  // An answer held back by the latency fault must not be cut off first.
  limits.handler_deadline = std::chrono::milliseconds(max_latency_ms + 60000);
  http::server server{routes, registry, limits};
  try {
    if (!tls.cert_file.empty())
      server.use_tls(tls);
  } catch (const std::exception& e) {
    log::error("payments-mock cannot use its TLS certificate", {{"error", e.what()}});
    return 1;
  }
  try {
    auto bound = server.listen(bind, static_cast<std::uint16_t>(port));
    auto scheme = tls.cert_file.empty() ? "http://" : "https://";
    log::info("payments-mock listening", {{"url", scheme + bind + ":" + std::to_string(bound)}});
  } catch (const std::exception& e) {
    log::error("payments-mock cannot listen", {{"error", e.what()}});
    return 1;
  }
  server.run(1, true);
  return 0;
}

// The multisig approval check (upgrade_book::approve): an approver's Ed25519
// signature over approval_message(upgrade id, payload hash, approver id),
// sent as base64. The input is a script of proposals, approvals and applies
// against a fresh book.
//
// Properties: nothing crashes; an approval is accepted only with the one
// signature the approver's key makes over exactly that upgrade, payload and
// approver id (the input cannot know the keys, so anything else accepted is a
// forgery); accepted approvals follow the staged order; an applied upgrade
// met its threshold.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "core/crypto.hpp"
#include "fuzz/property.hpp"
#include "domain/multisig.hpp"

namespace {

using namespace ap;

using ap::fuzz::violated;

constexpr int threshold = 2;
constexpr std::int64_t start_ms = 1'700'000'000'000;

struct keys {
  // Registered approvers and one outsider whose signatures must never count.
  std::map<std::string, std::string> seeds;
  std::map<std::string, std::string> registry;
  std::vector<std::string> ids{"alice", "bob", "carol", "mallory"};
  // Signing dominates the run time, so legitimate signatures are cached.
  std::map<std::string, std::string> signatures;

  keys() {
    for (const auto& id : ids)
      seeds[id] = crypto::sha256("multisig fuzz approver seed " + id);
    for (const auto& id : {"alice", "bob", "carol"})
      registry[id] = crypto::ed25519_public_key(seeds[id]);
  }

  // The raw signature `approver` (if it has a key) makes over `message`.
  std::optional<std::string> sign(const std::string& approver, const std::string& message) {
    auto seed = seeds.find(approver);
    if (seed == seeds.end())
      return std::nullopt;
    auto key = approver + '\n' + message;
    auto cached = signatures.find(key);
    if (cached != signatures.end())
      return cached->second;
    if (signatures.size() > 4096)
      signatures.clear();
    return signatures[key] = crypto::ed25519_sign(seed->second, message);
  }
};

keys& approver_keys() {
  static keys k;
  return k;
}

std::string pick_approver(FuzzedDataProvider& in, const keys& k) {
  if (in.ConsumeBool())
    return k.ids[in.ConsumeIntegralInRange<std::size_t>(0, k.ids.size() - 1)];
  return in.ConsumeRandomLengthString(32);
}

std::string base64(const std::string& bytes) {
  return crypto::base64_encode(bytes);
}

struct session {
  domain::upgrade_book book{approver_keys().registry, threshold};
  std::vector<std::string> upgrade_ids;
  std::int64_t now = start_ms;
};

std::string pick_upgrade_id(FuzzedDataProvider& in, const session& s) {
  if (!s.upgrade_ids.empty() && in.ConsumeBool())
    return s.upgrade_ids[in.ConsumeIntegralInRange<std::size_t>(0, s.upgrade_ids.size() - 1)];
  return in.ConsumeRandomLengthString(40);
}

void propose(FuzzedDataProvider& in, session& s, const keys& k) {
  static const char* const versions[] = {"1.1.0", "1.2.0", "2.0.0-rc.1", "2.0.0"};
  domain::upgrade_proposal p;
  p.version = in.ConsumeBool() ? versions[in.ConsumeIntegralInRange<std::size_t>(0, 3)]
                               : in.ConsumeRandomLengthString(24);
  p.binary_hash = in.ConsumeBool() ? std::string(64, 'a') : in.ConsumeRandomLengthString(70);
  p.notes = in.ConsumeRandomLengthString(64);
  p.kind = in.ConsumeBool() ? "upgrade"
           : in.ConsumeBool() ? "secret-rotation"
                              : in.ConsumeRandomLengthString(16);
  auto count = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  for (std::size_t i = 0; i < count; ++i)
    p.approvers.push_back(pick_approver(in, k));
  domain::upgrade_record r;
  if (s.book.propose(p, s.now, r))
    return;
  if (r.upgrade_id != domain::upgrade_id_for(r.payload_hash) || !r.approvals.empty())
    violated("a new upgrade record is inconsistent");
  s.upgrade_ids.push_back(r.upgrade_id);
}

void approve(FuzzedDataProvider& in, session& s, keys& k) {
  auto id = pick_upgrade_id(in, s);
  auto approver = pick_approver(in, k);
  // Stable across approve(): records live in a std::map.
  const auto* current = s.book.find(id);
  auto genuine = current ? k.sign(approver, domain::approval_message(id, current->payload_hash,
                                                                     approver))
                         : std::nullopt;
  std::string signature_b64;
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: // the genuine signature: reaches the order, expiry and duplicate rules
      if (genuine)
        signature_b64 = base64(*genuine);
      break;
    case 1: { // a genuine signature over some other message, or by another key
      auto signer = pick_approver(in, k);
      auto other_id = pick_upgrade_id(in, s);
      const auto* other = s.book.find(other_id);
      auto hash = other ? other->payload_hash : in.ConsumeRandomLengthString(64);
      auto named = pick_approver(in, k);
      if (auto sig = k.sign(signer, domain::approval_message(other_id, hash, named)))
        signature_b64 = base64(*sig);
      break;
    }
    case 2: // the genuine signature with one byte changed
      if (genuine) {
        auto bytes = *genuine;
        auto pos = in.ConsumeIntegralInRange<std::size_t>(0, bytes.size() - 1);
        bytes[pos] = static_cast<char>(static_cast<std::uint8_t>(bytes[pos])
                                       ^ in.ConsumeIntegralInRange<std::uint8_t>(1, 255));
        signature_b64 = base64(bytes);
      }
      break;
    case 3: // arbitrary bytes, well encoded
      signature_b64 = base64(in.ConsumeBytesAsString(in.ConsumeBool() ? 64 : 66));
      break;
    default: // arbitrary text
      signature_b64 = in.ConsumeRandomLengthString(100);
      break;
  }

  domain::upgrade_record out;
  auto refused = s.book.approve(id, approver, signature_b64, s.now, out);
  if (refused) {
    // SPEC 7: an approval is refused as forbidden (403), not found (404),
    // a conflict (409) or gone (410), never as invalid input.
    if (refused->kind == domain::refusal_kind::invalid_input)
      violated("an approval was refused with a status SPEC 7 does not give");
    return;
  }
  if (!current)
    violated("an approval was accepted for an upgrade the book does not hold");
  if (!k.registry.count(approver))
    violated("an approval was accepted from an unregistered approver");
  auto carried = crypto::base64_decode(signature_b64);
  if (!genuine || !carried || *carried != *genuine)
    violated("an approval was accepted with a signature the approver's key did not make");
  if (out.status != "pending" || s.now >= out.expires_at_ms)
    violated("an approval was accepted for an applied or expired upgrade");
  if (out.approvals.empty() || out.approvals.size() > out.proposal.approvers.size())
    violated("more approvals than staged approvers");
  for (std::size_t i = 0; i < out.approvals.size(); ++i)
    if (out.approvals[i].approver != out.proposal.approvers[i])
      violated("approvals out of the staged order");
  domain::upgrade_json(out);
}

void apply(FuzzedDataProvider& in, session& s) {
  auto id = pick_upgrade_id(in, s);
  domain::upgrade_record out;
  if (s.book.apply(id, in.ConsumeRandomLengthString(16), s.now, out))
    return;
  if (out.status != "applied" || static_cast<int>(out.approvals.size()) < out.threshold)
    violated("an upgrade was applied without its quorum");
  domain::upgrade_json(out);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& k = approver_keys();
  FuzzedDataProvider in{data, size};
  session s;
  // One upgrade exists from the start so that short inputs reach approve's
  // signature check.
  domain::upgrade_proposal first;
  first.version = "1.1.0";
  first.binary_hash = std::string(64, 'a');
  first.approvers = {"alice", "bob", "carol"};
  domain::upgrade_record r;
  if (s.book.propose(first, s.now, r))
    violated("the initial proposal was refused");
  s.upgrade_ids.push_back(r.upgrade_id);

  for (int step = 0; step < 32 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
        propose(in, s, k);
        break;
      case 1:
        apply(in, s);
        break;
      case 2:
        // The clock only moves forward, up to a little past one lifetime;
        // it is the service's own clock, not input.
        s.now += in.ConsumeIntegralInRange<std::int64_t>(0, domain::upgrade_lifetime_ms + 1000);
        break;
      default:
        approve(in, s, k);
        break;
    }
  }
  return 0;
}

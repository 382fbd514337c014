#include "kernel/mock/state_file.hpp"

#include <cstdint>
#include <fstream>
#include <optional>

#include "core/json.hpp"
#include "core/log.hpp"
#include "kernel/mock/mock_state.hpp"

namespace ap::kernel::mock {

namespace {

// What every step line carries, first, so that a reader of the file sees
// at once which kind of line it is; then the step's own `members`.
std::string step_line(const char* step, const std::string& upgrade_id, std::int64_t at_ms,
                      const std::string& members) {
  std::string out = "{\"upgradeStep\":";
  json::append_quoted(out, step);
  out += ",\"upgradeId\":";
  json::append_quoted(out, upgrade_id);
  out += ",\"atMs\":" + std::to_string(at_ms) + "," + members + '}';
  return out;
}

// Replays one upgrade step through the book; the reason when it does not
// take effect as it did when it was written.
std::optional<std::string> replay_step(domain::upgrade_book& book, const rapidjson::Value& d) {
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = d.FindMember(name);
    if (it == d.MemberEnd() || !it->value.IsString())
      return std::nullopt;
    return std::string{it->value.GetString(), it->value.GetStringLength()};
  };
  auto step = text("upgradeStep");
  auto id = text("upgradeId");
  auto at = d.FindMember("atMs");
  if (!step || !id || at == d.MemberEnd() || !at->value.IsInt64())
    return "an upgrade step needs upgradeStep, upgradeId and atMs";
  auto at_ms = at->value.GetInt64();
  domain::upgrade_record rec;
  std::optional<domain::multisig_refusal> refused;
  if (*step == "propose") {
    auto p = d.FindMember("proposal");
    if (p == d.MemberEnd())
      return "a proposal step needs its proposal";
    domain::upgrade_proposal proposal;
    if (auto bad = domain::parse_proposal(p->value, proposal))
      return bad->message;
    auto threshold = d.FindMember("threshold");
    if (threshold == d.MemberEnd() || !threshold->value.IsInt())
      return "a proposal step needs its threshold";
    refused = book.propose(proposal, at_ms, rec);
    if (!refused && rec.upgrade_id != *id)
      return "the proposal is not that of " + *id;
    // A pending upgrade would otherwise come back needing another number
    // of approvals than the Kernel told its approvers.
    if (!refused && rec.threshold != threshold->value.GetInt())
      return "proposed under threshold " + std::to_string(threshold->value.GetInt())
             + ", replayed under " + std::to_string(rec.threshold);
  } else if (*step == "approve") {
    auto approver = text("approverId");
    auto signature = text("signature");
    if (!approver || !signature)
      return "an approval step needs approverId and signature";
    refused = book.approve(*id, *approver, *signature, at_ms, rec);
  } else if (*step == "apply") {
    auto by = text("appliedBy");
    if (!by)
      return "an apply step needs appliedBy";
    refused = book.apply(*id, *by, at_ms, rec);
  } else {
    return "unknown upgradeStep '" + *step + "'";
  }
  if (refused)
    return refused->code + ": " + refused->message;
  return std::nullopt;
}

} // namespace

std::string proposed_line(const domain::upgrade_record& r) {
  // As its payload hash is taken: the replay recomputes the same upgrade id.
  std::string proposal = "\"proposal\":" + domain::canonical_proposal(r.proposal)
                         + ",\"threshold\":" + std::to_string(r.threshold);
  return step_line("propose", r.upgrade_id, r.created_at_ms, proposal);
}

std::string approved_line(const domain::upgrade_record& r) {
  const auto& a = r.approvals.back();
  std::string members = "\"approverId\":";
  json::append_quoted(members, a.approver);
  members += ",\"signature\":";
  json::append_quoted(members, a.signature);
  return step_line("approve", r.upgrade_id, a.approved_at_ms, members);
}

std::string applied_line(const domain::upgrade_record& r) {
  std::string members = "\"appliedBy\":";
  json::append_quoted(members, r.applied_by);
  return step_line("apply", r.upgrade_id, r.applied_at_ms, members);
}

bool load_state(mock_state& k, const std::string& file) {
  std::ifstream in{file};
  std::string line;
  std::size_t number = 0;
  std::size_t events = 0;
  std::size_t steps = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty())
      continue;
    rapidjson::Document d;
    if (json::parse_strict(line, d) || !d.IsObject()) {
      log::error("kernel-mock state has a line that is not a JSON object",
                 {{"file", file}, {"line", std::to_string(number)}});
      return false;
    }
    if (d.HasMember("upgradeStep")) {
      if (auto why = replay_step(k.upgrades, d)) {
        log::error("kernel-mock state has an upgrade step that does not replay (another approver "
                   "registry or threshold?)",
                   {{"file", file}, {"line", std::to_string(number)}, {"reason", *why}});
        return false;
      }
      ++steps;
    } else {
      if (!k.log.restore_line(line)) {
        log::error("kernel-mock state does not verify (another signing seed?)",
                   {{"file", file}, {"line", std::to_string(number)}});
        return false;
      }
      ++events;
    }
  }
  log::info("kernel-mock state loaded",
            {{"file", file}, {"events", std::to_string(events)}, {"upgradeSteps", std::to_string(steps)}});
  return true;
}

} // namespace ap::kernel::mock

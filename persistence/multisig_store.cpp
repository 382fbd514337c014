#include "persistence/multisig_store.hpp"

#include "core/ids.hpp"
#include "core/time.hpp"
#include "core/json.hpp"
#include "domain/secret_commitment.hpp"
#include "persistence/connection.hpp"

namespace ap::persistence {

const char* to_string(upgrade_op op) {
  switch (op) {
    case upgrade_op::propose:
      return "propose";
    case upgrade_op::approve:
      return "approve";
    case upgrade_op::apply:
      return "apply";
    case upgrade_op::get:
      return "get";
  }
  return "unknown";
}

namespace {

// pg_advisory_xact_lock key of the multisig steps.
constexpr const char* multisig_lock = "7262706173617032";

std::vector<std::string> parse_pg_array(const std::string& text) {
  // Approver ids come back from array_to_json as a JSON array.
  std::vector<std::string> out;
  rapidjson::Document doc;
  if (!json::parse_strict(text, doc) && doc.IsArray())
    for (const auto& v : doc.GetArray())
      if (v.IsString())
        out.emplace_back(v.GetString());
  return out;
}

// Loads every upgrade into a book (upgrades are few; the rules need the
// applied version too).
domain::upgrade_book load_book(connection& db, const std::map<std::string, std::string>& registry,
                               int threshold) {
  domain::upgrade_book book{registry, threshold};
  auto rows = db.exec("SELECT upgrade_id, kind, version, binary_hash, notes,"
                      " array_to_json(approvers)::text, payload_hash, threshold, status,"
                      " created_at_ms, expires_at_ms, coalesce(applied_at_ms, 0),"
                      " coalesce(applied_by, '') FROM upgrades");
  std::map<std::string, domain::upgrade_record> records;
  for (int i = 0; i < rows.rows(); ++i) {
    domain::upgrade_record r;
    r.upgrade_id = rows.value(i, 0);
    r.proposal.kind = rows.value(i, 1);
    r.proposal.version = rows.value(i, 2);
    r.proposal.binary_hash = rows.value(i, 3);
    r.proposal.notes = rows.value(i, 4);
    r.proposal.approvers = parse_pg_array(rows.value(i, 5));
    r.payload_hash = rows.value(i, 6);
    r.threshold = std::stoi(rows.value(i, 7));
    r.status = rows.value(i, 8);
    r.created_at_ms = std::stoll(rows.value(i, 9));
    r.expires_at_ms = std::stoll(rows.value(i, 10));
    r.applied_at_ms = std::stoll(rows.value(i, 11));
    r.applied_by = rows.value(i, 12);
    records[r.upgrade_id] = std::move(r);
  }
  auto approvals = db.exec("SELECT upgrade_id, approver, signature, approved_at_ms"
                           " FROM upgrade_approvals ORDER BY upgrade_id, position");
  for (int i = 0; i < approvals.rows(); ++i)
    records[approvals.value(i, 0)].approvals.push_back(
      {approvals.value(i, 1), approvals.value(i, 2), std::stoll(approvals.value(i, 3))});
  for (const auto& [id, r] : records)
    book.restore(r);
  return book;
}

void add_event(connection& db, const std::string& type, const std::string& payload) {
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload) VALUES ($1, $2, $3)",
          {"evt_" + record_id_hex(unix_ms_now()), type, payload});
}

std::string event_payload(const domain::upgrade_record& r, const std::string& extra = {}) {
  std::string out = "{";
  if (!extra.empty())
    out += extra + ",";
  out += "\"kind\":";
  json::append_quoted(out, r.proposal.kind);
  out += ",\"payloadHash\":\"" + r.payload_hash + "\",\"upgradeId\":\"" + r.upgrade_id
         + "\",\"version\":";
  json::append_quoted(out, r.proposal.version);
  return out + "}";
}

multisig_outcome refused(domain::multisig_refusal m) {
  return {std::move(m), {}};
}

} // namespace

multisig_outcome run_multisig(connection& db, const upgrade_step& cmd,
                              const std::map<std::string, std::string>& registry, int threshold) {
  return db.transaction([&]() -> multisig_outcome {
    db.exec(std::string{"SELECT pg_advisory_xact_lock("} + multisig_lock + ")");
    auto book = load_book(db, registry, threshold);
    multisig_outcome out;
    if (cmd.op == upgrade_op::get) {
      const auto* r = book.find(cmd.upgrade_id);
      if (!r)
        return refused({domain::refusal_kind::not_found, "not_found",
                        "no upgrade " + cmd.upgrade_id, ""});
      out.record = *r;
      return out;
    }
    std::optional<domain::multisig_refusal> refusal;
    switch (cmd.op) {
      case upgrade_op::propose:
        refusal = book.propose(cmd.proposal, cmd.now_ms, out.record);
        break;
      case upgrade_op::approve:
        refusal = book.approve(cmd.upgrade_id, cmd.approver, cmd.signature, cmd.now_ms,
                               out.record);
        break;
      case upgrade_op::apply:
        refusal = book.apply(cmd.upgrade_id, cmd.applied_by,
                             cmd.applied_at_ms ? cmd.applied_at_ms : cmd.now_ms, out.record);
        break;
      case upgrade_op::get:
        break;
    }
    if (refusal) {
      // A refused step on an existing upgrade is audited (whether the check
      // or the recording refused it): it may be an attack. Approvals can be
      // sent by anyone, so only a registered approver's refusal is: anything
      // else would let anyone write permanent audit events.
      bool audited = cmd.op != upgrade_op::propose
                     && refusal->kind != domain::refusal_kind::not_found
                     && (cmd.op != upgrade_op::approve || registry.count(cmd.approver) > 0);
      if (audited) {
        std::string extra = "\"approver\":";
        json::append_quoted(extra, cmd.approver);
        extra += ",\"reason\":";
        json::append_quoted(extra, refusal->code);
        extra += ",\"step\":";
        json::append_quoted(extra, to_string(cmd.op));
        extra += ",\"upgradeId\":";
        json::append_quoted(extra, cmd.upgrade_id);
        add_event(db, "upgrade.rejected", "{" + extra + "}");
      }
      return refused(std::move(*refusal));
    }
    if (!cmd.record)
      return out;
    const auto& r = out.record;
    if (cmd.op == upgrade_op::propose) {
      db.exec("INSERT INTO upgrades (upgrade_id, kind, version, binary_hash, notes, approvers,"
              " payload_hash, threshold, status, created_at_ms, expires_at_ms)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10)",
              {r.upgrade_id, r.proposal.kind, r.proposal.version, r.proposal.binary_hash,
               r.proposal.notes, to_pg_array(r.proposal.approvers), r.payload_hash,
               std::to_string(r.threshold), std::to_string(r.created_at_ms),
               std::to_string(r.expires_at_ms)});
      add_event(db, "upgrade.proposed", event_payload(r));
    } else if (cmd.op == upgrade_op::approve) {
      const auto& a = r.approvals.back();
      db.exec("INSERT INTO upgrade_approvals (upgrade_id, position, approver, signature,"
              " approved_at_ms) VALUES ($1, $2, $3, $4, $5)",
              {r.upgrade_id, std::to_string(r.approvals.size() - 1), a.approver, a.signature,
               std::to_string(a.approved_at_ms)});
      std::string extra = "\"approver\":";
      json::append_quoted(extra, a.approver);
      add_event(db, "upgrade.approved", event_payload(r, extra));
    } else {
      auto done = db.exec("UPDATE upgrades SET status = 'applied', applied_at_ms = $2,"
                          " applied_by = $3 WHERE upgrade_id = $1 AND status = 'pending'",
                          {r.upgrade_id, std::to_string(r.applied_at_ms), r.applied_by});
      if (done.affected() != 1)
        return refused({domain::refusal_kind::conflict, "already_applied",
                        "upgrade " + r.upgrade_id + " is applied already", ""});
      add_event(db, "upgrade.applied", event_payload(r));
      if (r.proposal.kind == "secret-rotation") {
        // Validated at propose: a stored rotation names its set and kid.
        auto target = domain::rotation_target_of(r.proposal.version).value_or(
          domain::rotation_target{domain::secret_set::proof, r.proposal.version});
        if (target.set == domain::secret_set::proof) {
          std::string extra = "\"kid\":";
          json::append_quoted(extra, target.kid);
          add_event(db, "proof_key.activated", event_payload(r, extra));
        }
        // What rotated and to what, never the value (SPEC §12).
        std::string rotated = "{\"commitment\":";
        json::append_quoted(rotated, r.proposal.binary_hash);
        rotated += ",\"kid\":";
        json::append_quoted(rotated, target.kid);
        rotated += ",\"set\":";
        json::append_quoted(rotated, domain::to_string(target.set));
        rotated += ",\"upgradeId\":";
        json::append_quoted(rotated, r.upgrade_id);
        add_event(db, "secret.rotated", rotated + "}");
      }
    }
    return out;
  });
}

namespace {

// The latest applied rotation of each set, as stored (`v2`,
// `delivery:d2`): a bare kid and `proof:` both name the proof set.
constexpr const char* latest_rotations =
  "SELECT DISTINCT ON (set_name) version FROM ("
  "  SELECT version, applied_at_ms,"
  "         CASE WHEN strpos(version, ':') = 0 THEN 'proof'"
  "              ELSE split_part(version, ':', 1) END AS set_name"
  "  FROM upgrades WHERE kind = 'secret-rotation' AND status = 'applied') r"
  " ORDER BY set_name, applied_at_ms DESC";

// Every kid the proof set's applied rotations activated.
constexpr const char* proof_rotation_kids =
  "SELECT CASE WHEN version LIKE 'proof:%' THEN substr(version, 7) ELSE version END"
  " FROM upgrades WHERE kind = 'secret-rotation' AND status = 'applied'"
  " AND (strpos(version, ':') = 0 OR version LIKE 'proof:%')";

std::vector<std::string> column(const result& rows) {
  std::vector<std::string> out;
  for (int i = 0; i < rows.rows(); ++i)
    out.push_back(rows.value(i, 0));
  return out;
}

} // namespace

std::vector<std::string> active_rotations(connection& db) {
  // Before migration 0004 there are no upgrades, so no rotation either.
  if (db.exec("SELECT to_regclass('upgrades') IS NOT NULL").value(0, 0) != "t")
    return {};
  return column(db.exec(latest_rotations));
}

std::optional<std::string> active_proof_kid(connection& db) {
  for (const auto& version : active_rotations(db))
    if (auto t = domain::rotation_target_of(version); t && t->set == domain::secret_set::proof)
      return t->kid;
  return std::nullopt;
}

std::set<std::string> proof_signing_kids(connection& db) {
  std::set<std::string> out;
  if (db.exec("SELECT to_regclass('proof_signing_kids') IS NOT NULL").value(0, 0) != "t")
    return out;
  auto rows = db.exec(std::string{"SELECT kid FROM proof_signing_kids UNION "} + proof_rotation_kids);
  for (int i = 0; i < rows.rows(); ++i)
    out.insert(rows.value(i, 0));
  return out;
}

void record_signing_kid(connection& db, const std::string& kid) {
  if (db.exec("SELECT to_regclass('proof_signing_kids') IS NOT NULL").value(0, 0) != "t")
    return;
  db.exec("INSERT INTO proof_signing_kids (kid) VALUES ($1) ON CONFLICT (kid) DO NOTHING", {kid});
}

std::vector<std::string> report_proof_keys(connection& db, const std::string& instance_id,
                                           const std::string& key_set) {
  // The unreferenced data-modifying WITH runs all the same.
  return column(db.exec(
    std::string{"WITH seen AS (INSERT INTO proof_key_sets (instance_id, keys, seen_at)"
                "              VALUES ($1, $2::jsonb, now())"
                "              ON CONFLICT (instance_id) DO UPDATE SET keys = EXCLUDED.keys,"
                "              seen_at = now()) "}
      + latest_rotations,
    {instance_id, key_set}));
}

void forget_proof_keys(connection& db, const std::string& instance_id) {
  db.exec("DELETE FROM proof_key_sets WHERE instance_id = $1", {instance_id});
}

std::vector<std::string> rotation_problems(connection& db, const std::string& kid,
                                           const std::string& commitment, std::int32_t within_ms) {
  auto target = domain::rotation_target_of(kid);
  std::string what = !target || target->set == domain::secret_set::proof
                       ? "proof secret"
                       : std::string{domain::to_string(target->set)} + " secret";
  db.exec("DELETE FROM proof_key_sets WHERE seen_at < now() - interval '1 day'");
  auto rows = db.exec("SELECT instance_id, keys ->> $1 FROM proof_key_sets"
                      " WHERE seen_at > now() - make_interval(secs => $2::double precision / 1000)"
                      " ORDER BY instance_id",
                      {kid, std::to_string(within_ms)});
  std::vector<std::string> out;
  for (int i = 0; i < rows.rows(); ++i) {
    auto instance = rows.value(i, 0);
    if (rows.is_null(i, 1))
      out.push_back("instance " + instance + " has no " + what + " for kid '" + kid + "'");
    else if (rows.value(i, 1) != commitment)
      out.push_back("instance " + instance + " has another key for kid '" + kid + "'");
  }
  return out;
}

} // namespace ap::persistence

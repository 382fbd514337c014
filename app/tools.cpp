// Offline tools for buyers and operators: no database, no network.
#include "app/tools.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <iostream>
#include <optional>
#include <sstream>
#include <tuple>

#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/secret_source.hpp"
#include "domain/delivery.hpp"
#include "domain/order.hpp"
#include "domain/proof.hpp"
#include "domain/receipt.hpp"

namespace ap::app {

namespace {

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A secret argument given as itself or as @FILE (surrounding white space is
// not part of it, as for every secret the service reads); says why on stderr
// and answers nullopt when the file is unreadable or it is empty.
std::optional<std::string> secret_argument(const std::string& value_or_file, const std::string& what) {
  auto source = secret_source::parse(value_or_file);
  if (auto why = source.check()) {
    if (source.from_file() && why->rfind("cannot read ", 0) == 0)
      std::cerr << "cannot read " << what << " file " << why->substr(12) << "\n";
    else
      std::cerr << "the " << what << " is empty\n";
    return std::nullopt;
  }
  return source.current();
}

// Where `keygen --out NAME` puts an approver's keys: outside any checkout,
// so that a private key never shows up in a working tree.
std::optional<std::string> approver_key_dir() {
  const char* data = std::getenv("XDG_DATA_HOME");
  if (data && data[0] == '/')
    return std::string{data} + "/artifact-publisher/keys";
  const char* home = std::getenv("HOME");
  if (home && home[0] == '/')
    return std::string{home} + "/.local/share/artifact-publisher/keys";
  return std::nullopt;
}

// Creates `dir` and its missing parents, each readable by its owner only.
bool make_private_dir(const std::string& dir) {
  for (auto slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    auto part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), 0700) == 0) {
      if (::chmod(part.c_str(), 0700) != 0)
        return false;
    } else if (errno != EEXIST) {
      return false;
    }
    if (slash == std::string::npos)
      return true;
  }
}

bool load_json(const std::string& path, rapidjson::Document& doc, const char* what) {
  auto text = read_text(path);
  if (!text) {
    std::cerr << "cannot read " << what << " file " << path << "\n";
    return false;
  }
  if (auto err = json::parse_strict(*text, doc)) {
    std::cerr << path << ": " << *err << "\n";
    return false;
  }
  return true;
}

// Splits `FILE --flag value ...` arguments, each of `flags` at most once;
// nullopt on anything unexpected.
std::optional<std::pair<std::string, std::map<std::string, std::string>>>
file_and_flags(const std::vector<std::string>& args, std::initializer_list<const char*> flags) {
  std::string file;
  std::map<std::string, std::string> given;
  for (std::size_t i = 0; i < args.size(); ++i) {
    bool matched = false;
    for (const char* f : flags) {
      if (args[i] == f) {
        if (i + 1 >= args.size() || given.count(f))
          return std::nullopt;
        given[f] = args[++i];
        matched = true;
      }
    }
    if (matched)
      continue;
    if (!file.empty() || args[i].rfind("--", 0) == 0)
      return std::nullopt;
    file = args[i];
  }
  if (file.empty())
    return std::nullopt;
  return std::make_pair(file, given);
}

const rapidjson::Value* member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject())
    return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

} // namespace

namespace {

// One receipt's verdict, for the report.
struct receipt_verdict {
  std::string event_id;
  std::string event_type;
  std::string reason;  // empty when it passed every check
};

// Checks the receipts of a CheckoutResult read back after delivery (SPEC
// §11): one for each event the order has, each payload rebuilt from the
// result itself, each hash recomputed and each signature verified under its
// signer's key. A result with no receipts to check yields the reason in
// `problem`.
std::vector<receipt_verdict> check_receipts(const rapidjson::Value& result,
                                            const domain::signer_keys& kernel_keys,
                                            std::string& problem) {
  std::vector<receipt_verdict> out;
  const auto* audit = member(result, "audit");
  const auto* status = audit ? member(*audit, "status") : nullptr;
  const auto* receipts = audit ? member(*audit, "receipts") : nullptr;
  if (status && status->IsString() && std::string{status->GetString()} == "pending") {
    problem = "audit_pending";
    return out;
  }
  if (!status || !status->IsString() || std::string{status->GetString()} != "delivered"
      || !receipts || !receipts->IsArray()) {
    problem = "no_receipts";
    return out;
  }
  auto order_status = domain::order_status_from(json::string_member(result, "status"));
  if (!order_status) {
    problem = "no_receipts";
    return out;
  }
  std::map<std::string, const rapidjson::Value*> by_type;
  for (const auto& r : receipts->GetArray())
    by_type[json::string_member(r, "eventType")] = &r;
  for (const auto& type : domain::audit_event_types(*order_status)) {
    receipt_verdict v{{}, type, {}};
    auto found = by_type.find(type);
    auto receipt = found == by_type.end() ? std::nullopt : domain::receipt_from_json(*found->second);
    if (!receipt) {
      v.reason = found == by_type.end() ? "missing_receipt" : "malformed";
      out.push_back(std::move(v));
      continue;
    }
    v.event_id = receipt->ack.event_id;
    // The order's own event id is in its audit member; the others are
    // bound to the order by their payload, which names it.
    auto expected_id = type == "order.completed" ? json::string_member(*audit, "eventId")
                                                 : receipt->ack.event_id;
    auto payload = domain::event_payload_from_result(result, type);
    if (!payload)
      v.reason = "payload_unavailable";
    else if (auto check = domain::check_receipt(receipt->ack, expected_id, *payload, kernel_keys);
             check != domain::receipt_check::ok)
      v.reason = domain::to_string(check);
    out.push_back(std::move(v));
  }
  return out;
}

} // namespace

int verify_proof_command(const std::vector<std::string>& args) {
  auto parsed = file_and_flags(args, {"--keys", "--public-key", "--kernel-keys"});
  if (!parsed || (parsed->second.count("--keys") && parsed->second.count("--public-key"))) {
    std::cerr << "usage: artifact-publisher verify-proof FILE [--keys KEYS.json | --public-key "
                 "BASE64]\n"
                 "                                    [--kernel-keys KERNEL_KEYS.json]\n"
                 "FILE holds a CheckoutResult, a proof record, or {\"proof\",\"payload\"};\n"
                 "KEYS.json is what GET /api/proof/keys answers. With --kernel-keys (what the\n"
                 "Kernel's GET /kernel/keys answers), FILE must be a CheckoutResult read back\n"
                 "after its audit was delivered, and its audit receipts are checked too.\n";
    return 2;
  }
  const auto& flags = parsed->second;
  rapidjson::Document doc;
  if (!load_json(parsed->first, doc, "proof"))
    return 2;
  // Accept the three shapes a buyer is likely to hold: a CheckoutResult or
  // {proof, payload} (a "proof" member), or a bare proof record.
  const rapidjson::Value* proof = member(doc, "proof") ? member(doc, "proof") : &doc;
  const rapidjson::Value* payload =
    proof != &doc && member(doc, "payload") ? member(doc, "payload") : member(*proof, "payload");
  if (!proof->IsObject() || !payload) {
    std::cerr << parsed->first << ": no proof with a payload found\n";
    return 2;
  }
  auto kid_value = member(*proof, "kid");
  std::string kid = kid_value && kid_value->IsString() ? kid_value->GetString() : "";

  std::optional<domain::signer_keys> kernel_keys;
  if (auto k = flags.find("--kernel-keys"); k != flags.end()) {
    auto text = read_text(k->second);
    if (!text) {
      std::cerr << "cannot read kernel keys file " << k->second << "\n";
      return 2;
    }
    auto keys = domain::parse_kernel_keys(*text);
    if (!keys) {
      std::cerr << k->second << ": not what GET /kernel/keys answers ({\"signers\":[...]})\n";
      return 2;
    }
    kernel_keys = domain::keys_by_signer(*keys);
  }

  std::string public_key_b64;
  if (auto k = flags.find("--public-key"); k != flags.end()) {
    public_key_b64 = k->second;
  } else if (auto k = flags.find("--keys"); k != flags.end()) {
    rapidjson::Document keys;
    if (!load_json(k->second, keys, "keys"))
      return 2;
    if (auto* list = member(keys, "keys"); list && list->IsArray())
      for (const auto& key : list->GetArray())
        if (auto* id = member(key, "kid"); id && id->IsString() && kid == id->GetString())
          if (auto* pk = member(key, "publicKey"); pk && pk->IsString())
            public_key_b64 = pk->GetString();
    if (public_key_b64.empty()) {
      std::cout << R"({"valid":false,"reason":"unknown_kid"})" << "\n";
      return 1;
    }
  } else {
    std::cerr << "give the public key: --keys KEYS.json or --public-key BASE64\n";
    return 2;
  }
  auto public_key = crypto::base64_decode(public_key_b64);
  if (!public_key || public_key->size() != 32) {
    std::cerr << "the public key must be base64 of 32 raw bytes\n";
    return 2;
  }
  auto result = domain::verify_proof_offline(*proof, *payload, *public_key);
  bool valid = result.valid;
  std::string reason = result.reason;

  std::string receipts_json;
  if (kernel_keys) {
    std::string problem;
    auto verdicts = check_receipts(doc, *kernel_keys, problem);
    if (!problem.empty()) {
      std::cerr << parsed->first
                << (problem == "audit_pending"
                      ? ": its audit is still pending, so not every receipt is in yet; read the "
                        "order again (GET /api/checkout/{orderId}) once audit.status is delivered\n"
                      : ": no audit receipts to check; --kernel-keys needs a CheckoutResult read "
                        "back (GET /api/checkout/{orderId}) after its audit was delivered\n");
      valid = false;
      if (reason.empty())
        reason = problem;
    }
    receipts_json = "[";
    for (const auto& v : verdicts) {
      if (receipts_json.size() > 1)
        receipts_json += ',';
      receipts_json += "{\"eventId\":";
      json::append_quoted(receipts_json, v.event_id);
      receipts_json += ",\"eventType\":";
      json::append_quoted(receipts_json, v.event_type);
      if (!v.reason.empty()) {
        receipts_json += ",\"reason\":";
        json::append_quoted(receipts_json, v.reason);
        std::cerr << "the receipt of " << v.event_type << " event "
                  << (v.event_id.empty() ? std::string{"(none)"} : v.event_id)
                  << " fails: " << v.reason << "\n";
        valid = false;
        if (reason.empty())
          reason = v.reason;
      }
      receipts_json += v.reason.empty() ? ",\"valid\":true}" : ",\"valid\":false}";
    }
    receipts_json += "]";
  }

  std::string out = "{";
  if (!valid) {
    out += "\"reason\":";
    json::append_quoted(out, reason);
    out += ',';
  }
  out += "\"kid\":";
  json::append_quoted(out, kid);
  if (kernel_keys)
    out += ",\"receipts\":" + receipts_json;
  out += valid ? ",\"valid\":true}" : ",\"valid\":false}";
  std::cout << out << "\n";
  return valid ? 0 : 1;
}

int decrypt_delivery_command(const std::vector<std::string>& args) {
  auto parsed = file_and_flags(args, {"--license-key", "--private-key", "--delivery-keys"});
  if (!parsed || parsed->second.size() > 1) {
    std::cerr << "usage: artifact-publisher decrypt-delivery FILE [--license-key BASE64 | "
                 "--private-key PEMFILE |\n"
                 "         --delivery-keys JSON|@FILE]\n"
                 "FILE holds a delivery record or a whole CheckoutResult (whose license key,\n"
                 "if it has one, is used when no key is given). --delivery-keys takes the\n"
                 "operator's master keys as ARTIFACT_PUBLISHER_DELIVERY_KEYS does ({\"kid\":\"key\"});\n"
                 "the delivery's keyId (d1 when it has none) picks the one it was sealed with.\n";
    return 2;
  }
  rapidjson::Document doc;
  if (!load_json(parsed->first, doc, "delivery"))
    return 2;
  const rapidjson::Value* delivery = member(doc, "delivery") ? member(doc, "delivery") : &doc;
  auto field = [&](const char* name) -> std::string {
    auto* v = member(*delivery, name);
    return v && v->IsString() ? v->GetString() : "";
  };
  if (field("algorithm") != "aes-256-gcm" || field("nonce").empty() || field("cipherText").empty()) {
    std::cerr << parsed->first << ": not a delivery record (algorithm, nonce, cipherText)\n";
    return 2;
  }
  std::string key;
  std::string flag, value;
  if (!parsed->second.empty())
    std::tie(flag, value) = *parsed->second.begin();
  try {
    if (flag == "--license-key") {
      auto k = crypto::base64_decode(value);
      if (!k || k->size() != 32) {
        std::cerr << "the license key must be base64 of 32 bytes\n";
        return 2;
      }
      key = *k;
    } else if (flag == "--delivery-keys") {
      std::map<std::string, std::string> masters;
      std::vector<std::string> problems;
      parse_secret_set(value, "--delivery-keys", masters, problems);
      if (!problems.empty()) {
        for (const auto& p : problems)
          std::cerr << p << "\n";
        return 2;
      }
      auto kid = domain::delivery_key_id(*delivery);
      auto master = masters.find(kid);
      if (master == masters.end()) {
        std::cerr << "cannot decrypt: the delivery was sealed with delivery key '" << kid
                  << "', which --delivery-keys does not hold\n";
        return 1;
      }
      // The per-order key, re-derived as the checkout derived it (SPEC §5).
      key = domain::delivery_key(master->second, field("orderId"));
    } else if (flag == "--private-key") {
      auto pem = read_text(value);
      if (!pem) {
        std::cerr << "cannot read private key file " << value << "\n";
        return 2;
      }
      auto wrapped = crypto::base64_decode(field("wrappedKey"));
      if (!wrapped) {
        std::cerr << "the delivery has no wrappedKey: use --license-key\n";
        return 2;
      }
      key = crypto::rsa_oaep_sha256_decrypt(*pem, *wrapped);
    } else if (auto* license = member(doc, "license"); license && member(*license, "licenseKey")) {
      auto k = crypto::base64_decode(member(*license, "licenseKey")->GetString());
      key = k ? *k : "";
    } else {
      std::cerr << "give the key: --license-key BASE64 or --private-key PEMFILE\n";
      return 2;
    }
    std::cout << domain::open_delivery(key, field("nonce"), field("cipherText"), field("aad"))
              << "\n";
    return 0;
  } catch (const crypto::crypto_error& e) {
    std::cerr << "cannot decrypt: " << e.what() << "\n";
    return 1;
  }
}

} // namespace ap::app

#include "domain/multisig.hpp"
#include "domain/secret_commitment.hpp"

namespace ap::app {

int keygen_command(const std::vector<std::string>& args) {
  if (!(args.empty() || (args.size() == 2 && args[0] == "--out" && !args[1].empty()))) {
    std::cerr << "usage: artifact-publisher keygen [--out NAME|PATH]\n"
                 "Prints {\"privateKey\",\"publicKey\"} (base64). With --out, writes the private\n"
                 "key to NAME.key (mode 600) and the public key to NAME.pub, in\n"
                 "${XDG_DATA_HOME:-$HOME/.local/share}/artifact-publisher/keys (mode 700), or\n"
                 "beside PATH when it names a directory (./alice, /secure/alice); prints the\n"
                 "public key and, on stderr, where it wrote. Register the public key in\n"
                 "ARTIFACT_PUBLISHER_APPROVERS.\n";
    return 2;
  }
  std::string stem;
  if (!args.empty()) {
    if (args[1].find('/') != std::string::npos) {
      stem = args[1];
    } else {
      auto dir = approver_key_dir();
      if (!dir) {
        std::cerr << "cannot tell where keys go: set HOME or XDG_DATA_HOME, or give --out a path (./NAME)\n";
        return 1;
      }
      if (!make_private_dir(*dir)) {
        std::cerr << "cannot create " << *dir << ": " << std::strerror(errno) << "\n";
        return 1;
      }
      stem = *dir + "/" + args[1];
    }
  }
  auto seed = crypto::random_bytes(32);
  auto private_b64 = crypto::base64_encode(seed);
  auto public_b64 = crypto::base64_encode(crypto::ed25519_public_key(seed));
  if (args.empty()) {
    std::cout << "{\"privateKey\":\"" << private_b64 << "\",\"publicKey\":\"" << public_b64 << "\"}\n";
    return 0;
  }
  auto key_path = stem + ".key";
  auto pub_path = stem + ".pub";
  // The private key file is created readable by its owner only, whatever the umask.
  auto fd = ::open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    std::cerr << "cannot create " << key_path << " (does it exist already?)\n";
    return 1;
  }
  auto line = private_b64 + "\n";
  bool written = ::fchmod(fd, 0600) == 0
                 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  std::ofstream pub{pub_path};
  pub << public_b64 << "\n";
  pub.close();
  if (!written || !pub) {
    std::cerr << "cannot write the key files\n";
    return 1;
  }
  std::cout << public_b64 << "\n";
  std::cerr << "wrote " << key_path << " (private, mode 600) and " << pub_path << "\n";
  return 0;
}

int commit_secret_command(const std::vector<std::string>& args) {
  constexpr const char* usage =
    "usage: artifact-publisher commit-secret --set proof|delivery|stripe|kernel-token\n"
    "         --kid KID --value SECRET|@FILE\n"
    "Prints the commitment to that secret version (hex): the binaryHash of the\n"
    "secret-rotation proposal that activates it. With @FILE the secret is the file's\n"
    "contents without surrounding white space.\n";
  std::map<std::string, std::string> flags;
  bool well_formed = args.size() % 2 == 0;
  for (std::size_t i = 0; well_formed && i + 1 < args.size(); i += 2) {
    const auto& flag = args[i];
    well_formed = (flag == "--set" || flag == "--kid" || flag == "--value")
                  && flags.emplace(flag, args[i + 1]).second;
  }
  if (!well_formed || flags.size() != 3) {
    std::cerr << usage;
    return 2;
  }
  auto set = domain::secret_set_from(flags["--set"]);
  if (!set) {
    std::cerr << "unknown secret set '" << flags["--set"]
              << "': expected proof, delivery, stripe or kernel-token\n";
    return 2;
  }
  const auto& kid = flags["--kid"];
  if (kid.empty()) {
    std::cerr << "--kid must not be empty\n";
    return 2;
  }
  auto secret = secret_argument(flags["--value"], "secret");
  if (!secret)
    return 2;
  std::cout << domain::secret_commitment(*set, kid, *secret) << "\n";
  return 0;
}

int sign_approval_command(const std::vector<std::string>& args) {
  std::map<std::string, std::string> flags;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2)
    flags[args[i]] = args[i + 1];
  bool complete = args.size() % 2 == 0 && flags.size() == 4;
  for (const char* f : {"--upgrade-id", "--payload-hash", "--approver", "--private-key"})
    complete = complete && flags.count(f);
  if (!complete) {
    std::cerr << "usage: artifact-publisher sign-approval --upgrade-id ID --payload-hash HEX\n"
                 "         --approver ID --private-key BASE64|@FILE\n"
                 "Prints the base64 signature to send as {\"approver\",\"signature\"}.\n";
    return 2;
  }
  auto key_text = secret_argument(flags["--private-key"], "private key");
  if (!key_text)
    return 2;
  auto seed = crypto::base64_decode(*key_text);
  if (!seed || seed->size() != 32) {
    std::cerr << "the private key must be base64 of a 32-byte Ed25519 seed (as keygen prints)\n";
    return 2;
  }
  const auto& hash = flags["--payload-hash"];
  if (hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
    std::cerr << "--payload-hash must be 64 lower-case hex characters\n";
    return 2;
  }
  auto message = domain::approval_message(flags["--upgrade-id"], hash, flags["--approver"]);
  std::cout << crypto::base64_encode(crypto::ed25519_sign(*seed, message)) << "\n";
  return 0;
}

} // namespace ap::app

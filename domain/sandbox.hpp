#pragma once

// The sandbox (SPEC §4): a deterministic dry run of checkout quotes, proof
// signing/verification and licenses. No charge, no order, no audit; the same
// instructions and seed give the same transcript, byte for byte.

#include <string>
#include <optional>
#include <variant>

#include <rapidjson/document.h>

#include "domain/checkout.hpp"

namespace ap::domain {

/// Checks the shape of a sandbox body: `instructions` with 1-100 entries,
/// each `{op, payload}` with a known op. Returns the error or nothing.
std::optional<input_error> validate_sandbox(const rapidjson::Value& body);

/// Runs a validated body. Proofs are signed with a key derived from `seed`
/// (kid "sandbox"), never with a real proof secret; timestamps derive from
/// the seed and the instruction index. Returns the canonical
/// `{exitCode, transcript}` document.
std::string run_sandbox(const rapidjson::Value& body, const std::string& seed,
                        const catalog& items);

} // namespace ap::domain

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ap {

/// Returns `bytes` random bytes from the operating system's CSPRNG as
/// lower-case hex (2 * bytes characters).
std::string random_hex(std::size_t bytes);

/// Returns 24 lower-case hex for the id of a stored record (`order_`,
/// `evt_`): the Unix second of `unix_ms` as 8 hex, then 16 hex (64 bits)
/// from the CSPRNG. Ids made in the same second share their first 8 digits
/// and later seconds sort after earlier ones, so the B-tree indexes they key
/// take new entries in a few recent pages instead of anywhere in the tree,
/// which keeps the cost of a write flat as the tables grow. The 64 random
/// bits keep an id unguessable; the id tells the second it was made, which
/// the record's `createdAt` says anyway.
std::string record_id_hex(std::int64_t unix_ms);

/// As above, with the 64 bits taken from `random8` (8 bytes already drawn
/// from the CSPRNG), so that a caller needing several ids draws their bytes
/// with one system call. Throws std::invalid_argument unless `random8` is 8
/// bytes.
std::string record_id_hex(std::int64_t unix_ms, std::string_view random8);

/// Lower-case hex of `bytes` (2 characters a byte).
std::string hex_of(std::string_view bytes);

/// The 24 hex of an id derived from the record `parent_hex` (24 hex from
/// record_id_hex) and a keyed digest `digest_hex` (at least 16 hex): the
/// parent's second, then the digest's first 16 digits, so an id derived
/// from an order (its ledger entry, its payment in the embedded processor)
/// is placed by time as the order is and stays the same on every retry.
std::string derived_record_id_hex(std::string_view parent_hex, std::string_view digest_hex);

/// Returns a fresh request id (`req_` + 16 hex) for a request that came
/// without a usable `X-Request-Id`.
std::string new_request_id();

/// Whether a client-supplied request id may be echoed back and logged:
/// 1-128 characters of `[A-Za-z0-9._:-]`, so it cannot break a header or a
/// log line.
bool is_acceptable_request_id(std::string_view id);

} // namespace ap

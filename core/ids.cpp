#include "core/ids.hpp"

#include <array>
#include <random>
#include <stdexcept>

#include "core/crypto.hpp"

namespace ap {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* data, std::size_t size) {
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = hex_digits[data[i] >> 4];
    out[2 * i + 1] = hex_digits[data[i] & 0x0f];
  }
  return out;
}

} // namespace

std::string hex_of(std::string_view bytes) {
  return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string random_hex(std::size_t bytes) {
  return hex_of(crypto::public_random_bytes(bytes));
}

std::string record_id_hex(std::int64_t unix_ms, std::string_view random8) {
  if (random8.size() != 8)
    throw std::invalid_argument("record_id_hex: 8 random bytes needed");
  auto seconds = static_cast<std::uint32_t>(unix_ms / 1000);
  std::array<unsigned char, 4> prefix{};
  for (std::size_t i = 0; i < prefix.size(); ++i)
    prefix[i] = static_cast<unsigned char>(seconds >> (8 * (prefix.size() - 1 - i)));
  return to_hex(prefix.data(), prefix.size()) + hex_of(random8);
}

std::string record_id_hex(std::int64_t unix_ms) {
  return record_id_hex(unix_ms, crypto::public_random_bytes(8));
}

std::string derived_record_id_hex(std::string_view parent_hex, std::string_view digest_hex) {
  if (parent_hex.size() < 8 || digest_hex.size() < 16)
    throw std::invalid_argument("derived_record_id_hex: parent needs 8 hex, digest 16");
  std::string out{parent_hex.substr(0, 8)};
  out.append(digest_hex.substr(0, 16));
  return out;
}

std::string new_request_id() {
  // Request ids only need to be unique enough to correlate logs; a seeded
  // per-thread generator avoids a system call on every request.
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::array<unsigned char, 8> raw{};
  auto value = gen();
  for (auto& b : raw) {
    b = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
  return "req_" + to_hex(raw.data(), raw.size());
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

} // namespace ap

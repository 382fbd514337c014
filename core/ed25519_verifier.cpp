// Ed25519 verification under one public key that checks many signatures
// (the Kernel's receipts, SPEC §11). A verification is [S]B - [k]A compared
// with R (RFC 8032 §5.1.7, the same cofactorless equation and encoding
// check as ed25519_verify). A general verifier computes both products with
// ~253 point doublings; here B and A each have a table of their multiples
// i·64^j (i = 1..32, j = 0..42), so each product is at most 43 additions
// of a table entry and no doubling.
//
// Everything here handles public data (keys, signatures, messages), so the
// code may branch and index on it: it is not for secret scalars.
//
// Field elements are five 51-bit limbs modulo p = 2^255 - 19; points are
// extended twisted Edwards coordinates (X:Y:Z:T), x = X/Z, y = Y/Z,
// xy = T/Z, on -x^2 + y^2 = 1 + d x^2 y^2; table entries are affine
// (y+x, y-x, 2dxy).
#include "core/crypto.hpp"
#include "core/ed25519_scalar.hpp"

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

#include <cryptopp/sha.h>

namespace ap::crypto {

namespace {

using u64 = std::uint64_t;
using u128 = unsigned __int128;
using byte = unsigned char;

constexpr u64 mask51 = (u64{1} << 51) - 1;

struct fe {
  u64 v[5];
};

u64 load64(const byte* p) {
  u64 x;
  std::memcpy(&x, p, 8);
  return x; // x86-64 and every target we build for are little endian
}

void store64(byte* p, u64 x) { std::memcpy(p, &x, 8); }

fe fe_small(u64 n) { return fe{{n, 0, 0, 0, 0}}; }

// Carries each limb into the next, the top one back into the first times
// 19: limbs below 2^51 except the first, below 2^51 + 2^18.
fe carry(fe a) {
  u64 c;
  c = a.v[0] >> 51; a.v[0] &= mask51; a.v[1] += c;
  c = a.v[1] >> 51; a.v[1] &= mask51; a.v[2] += c;
  c = a.v[2] >> 51; a.v[2] &= mask51; a.v[3] += c;
  c = a.v[3] >> 51; a.v[3] &= mask51; a.v[4] += c;
  c = a.v[4] >> 51; a.v[4] &= mask51; a.v[0] += c * 19;
  return a;
}

fe operator+(const fe& a, const fe& b) {
  return carry(fe{{a.v[0] + b.v[0], a.v[1] + b.v[1], a.v[2] + b.v[2], a.v[3] + b.v[3],
                   a.v[4] + b.v[4]}});
}

// a + 4p - b: every limb of b is below 2^52, so nothing underflows.
fe operator-(const fe& a, const fe& b) {
  constexpr u64 four_p0 = 0x1FFFFFFFFFFFB4, four_p = 0x1FFFFFFFFFFFFC;
  return carry(fe{{a.v[0] + four_p0 - b.v[0], a.v[1] + four_p - b.v[1],
                   a.v[2] + four_p - b.v[2], a.v[3] + four_p - b.v[3],
                   a.v[4] + four_p - b.v[4]}});
}

fe carry_wide(u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
  fe out;
  r1 += static_cast<u64>(r0 >> 51); out.v[0] = static_cast<u64>(r0) & mask51;
  r2 += static_cast<u64>(r1 >> 51); out.v[1] = static_cast<u64>(r1) & mask51;
  r3 += static_cast<u64>(r2 >> 51); out.v[2] = static_cast<u64>(r2) & mask51;
  r4 += static_cast<u64>(r3 >> 51); out.v[3] = static_cast<u64>(r3) & mask51;
  u64 c = static_cast<u64>(r4 >> 51); out.v[4] = static_cast<u64>(r4) & mask51;
  out.v[0] += c * 19;
  out.v[1] += out.v[0] >> 51;
  out.v[0] &= mask51;
  return out;
}

fe operator*(const fe& a, const fe& b) {
  const u64 b1 = b.v[1] * 19, b2 = b.v[2] * 19, b3 = b.v[3] * 19, b4 = b.v[4] * 19;
  auto m = [](u64 x, u64 y) { return static_cast<u128>(x) * y; };
  u128 r0 = m(a.v[0], b.v[0]) + m(a.v[1], b4) + m(a.v[2], b3) + m(a.v[3], b2) + m(a.v[4], b1);
  u128 r1 = m(a.v[0], b.v[1]) + m(a.v[1], b.v[0]) + m(a.v[2], b4) + m(a.v[3], b3) + m(a.v[4], b2);
  u128 r2 = m(a.v[0], b.v[2]) + m(a.v[1], b.v[1]) + m(a.v[2], b.v[0]) + m(a.v[3], b4)
            + m(a.v[4], b3);
  u128 r3 = m(a.v[0], b.v[3]) + m(a.v[1], b.v[2]) + m(a.v[2], b.v[1]) + m(a.v[3], b.v[0])
            + m(a.v[4], b4);
  u128 r4 = m(a.v[0], b.v[4]) + m(a.v[1], b.v[3]) + m(a.v[2], b.v[2]) + m(a.v[3], b.v[1])
            + m(a.v[4], b.v[0]);
  return carry_wide(r0, r1, r2, r3, r4);
}

fe square(const fe& a) {
  const u64 d0 = a.v[0] * 2, d1 = a.v[1] * 2, d2 = a.v[2] * 2, d3 = a.v[3] * 2;
  const u64 a3_19 = a.v[3] * 19, a4_19 = a.v[4] * 19;
  auto m = [](u64 x, u64 y) { return static_cast<u128>(x) * y; };
  u128 r0 = m(a.v[0], a.v[0]) + m(d1, a4_19) + m(d2, a3_19);
  u128 r1 = m(d0, a.v[1]) + m(d2, a4_19) + m(a.v[3], a3_19);
  u128 r2 = m(d0, a.v[2]) + m(a.v[1], a.v[1]) + m(d3, a4_19);
  u128 r3 = m(d0, a.v[3]) + m(d1, a.v[2]) + m(a.v[4], a4_19);
  u128 r4 = m(d0, a.v[4]) + m(d1, a.v[3]) + m(a.v[2], a.v[2]);
  return carry_wide(r0, r1, r2, r3, r4);
}

fe square_times(fe a, int n) {
  while (n-- > 0)
    a = square(a);
  return a;
}

// The low 255 bits of 32 little-endian bytes (bit 255 is the caller's).
fe from_bytes(const byte* s) {
  return fe{{load64(s) & mask51, (load64(s + 6) >> 3) & mask51, (load64(s + 12) >> 6) & mask51,
             (load64(s + 19) >> 1) & mask51, (load64(s + 24) >> 12) & mask51}};
}

// The canonical encoding: the value reduced below p.
std::array<byte, 32> to_bytes(fe a) {
  a = carry(carry(a)); // below 2^255 + 2^18 < 2p
  u64 q = (a.v[0] + 19) >> 51;
  q = (a.v[1] + q) >> 51;
  q = (a.v[2] + q) >> 51;
  q = (a.v[3] + q) >> 51;
  q = (a.v[4] + q) >> 51; // 1 when a >= p
  a.v[0] += 19 * q;
  a.v[1] += a.v[0] >> 51; a.v[0] &= mask51;
  a.v[2] += a.v[1] >> 51; a.v[1] &= mask51;
  a.v[3] += a.v[2] >> 51; a.v[2] &= mask51;
  a.v[4] += a.v[3] >> 51; a.v[3] &= mask51;
  a.v[4] &= mask51; // drops the 2^255 that a - p + 2^255 carried
  std::array<byte, 32> out;
  store64(out.data(), a.v[0] | (a.v[1] << 51));
  store64(out.data() + 8, (a.v[1] >> 13) | (a.v[2] << 38));
  store64(out.data() + 16, (a.v[2] >> 26) | (a.v[3] << 25));
  store64(out.data() + 24, (a.v[3] >> 39) | (a.v[4] << 12));
  return out;
}

bool is_zero(const fe& a) {
  auto b = to_bytes(a);
  byte acc = 0;
  for (byte x : b)
    acc |= x;
  return acc == 0;
}

bool is_negative(const fe& a) { return to_bytes(a)[0] & 1; }

fe negate(const fe& a) { return fe_small(0) - a; }

// z^(2^250 - 1), with z^11 beside it: the common stem of inversion and
// square root.
fe pow_2_250_1(const fe& z, fe& z11) {
  fe z2 = square(z);
  fe z9 = square_times(z2, 2) * z;
  z11 = z9 * z2;
  fe t = square(z11) * z9;                 // 2^5 - 1
  fe t10 = square_times(t, 5) * t;         // 2^10 - 1
  fe t20 = square_times(t10, 10) * t10;    // 2^20 - 1
  fe t40 = square_times(t20, 20) * t20;    // 2^40 - 1
  fe t50 = square_times(t40, 10) * t10;    // 2^50 - 1
  fe t100 = square_times(t50, 50) * t50;   // 2^100 - 1
  fe t200 = square_times(t100, 100) * t100; // 2^200 - 1
  return square_times(t200, 50) * t50;     // 2^250 - 1
}

// z^(p - 2) = z^(2^255 - 21) = 1/z (0 for 0).
fe invert(const fe& z) {
  fe z11;
  fe t = pow_2_250_1(z, z11);
  return square_times(t, 5) * z11;
}

// Replaces each of `n` elements by its inverse with one inversion and three
// multiplications each (Montgomery's trick). None may be zero, which the Z
// of a point never is.
void invert_all(fe* z, std::size_t n) {
  if (n == 0)
    return;
  std::vector<fe> prefix(n); // prefix[i] = z[0]·…·z[i]
  prefix[0] = z[0];
  for (std::size_t i = 1; i < n; ++i)
    prefix[i] = prefix[i - 1] * z[i];
  fe inverse = invert(prefix[n - 1]); // 1/(z[0]·…·z[i]) as i falls
  for (std::size_t i = n - 1; i > 0; --i) {
    fe zi = inverse * prefix[i - 1];
    inverse = inverse * z[i];
    z[i] = zi;
  }
  z[0] = inverse;
}

// z^((p - 5) / 8) = z^(2^252 - 3).
fe pow_p58(const fe& z) {
  fe z11;
  fe t = pow_2_250_1(z, z11);
  return square_times(t, 2) * z;
}

struct constants {
  fe d, d2, sqrt_m1;
  constants() {
    d = negate(fe_small(121665)) * invert(fe_small(121666));
    d2 = d + d;
    // 2 is not a square modulo p (p = 5 mod 8), so 2^((p-1)/4) squares to -1.
    fe two = fe_small(2);
    sqrt_m1 = square(pow_p58(two)) * two;
  }
};

const constants& k() {
  static const constants c;
  return c;
}

struct point {
  fe x, y, z, t;
};

// An affine point as a table holds it.
struct niels {
  fe y_plus_x, y_minus_x, xy2d;
};

point identity() { return point{fe_small(0), fe_small(1), fe_small(1), fe_small(0)}; }

// RFC 8032 §5.1.3. False for an encoding that is not a point, whose y is
// not below p, or that gives x = 0 the sign of a negative x (Crypto++
// accepts the last two; both are small-order points, refused anyway).
bool decode_point(const byte* s, point& out) {
  fe y = from_bytes(s);
  std::array<byte, 32> canonical = to_bytes(y);
  if (std::memcmp(canonical.data(), s, 31) != 0 || canonical[31] != (s[31] & 0x7f))
    return false;
  fe one = fe_small(1);
  fe yy = square(y);
  fe u = yy - one;
  fe v = k().d * yy + one;
  fe v3 = square(v) * v;
  fe x = u * v3 * pow_p58(u * square(v3) * v);
  fe vxx = v * square(x);
  if (!is_zero(vxx - u)) {
    if (!is_zero(vxx + u))
      return false;
    x = x * k().sqrt_m1;
  }
  bool sign = s[31] >> 7;
  if (is_zero(x) && sign)
    return false;
  if (is_negative(x) != sign)
    x = negate(x);
  out = point{x, y, one, x * y};
  return true;
}

// The encoding of p, given 1/Z.
std::array<byte, 32> encode_point(const point& p, const fe& zi) {
  fe x = p.x * zi;
  auto out = to_bytes(p.y * zi);
  out[31] |= static_cast<byte>(is_negative(x) << 7);
  return out;
}

// p + q (add-2008-hwcd-3, a = -1).
point add(const point& p, const point& q) {
  fe a = (p.y - p.x) * (q.y - q.x);
  fe b = (p.y + p.x) * (q.y + q.x);
  fe c = p.t * k().d2 * q.t;
  fe zz = p.z * q.z;
  fe d = zz + zz;
  fe e = b - a, f = d - c, g = d + c, h = b + a;
  return point{e * f, g * h, f * g, e * h};
}

// p + q for a table entry q (its z is 1), or p - q when `minus`.
point add(const point& p, const niels& q, bool minus) {
  fe a = (p.y - p.x) * (minus ? q.y_plus_x : q.y_minus_x);
  fe b = (p.y + p.x) * (minus ? q.y_minus_x : q.y_plus_x);
  fe c = p.t * q.xy2d;
  fe d = p.z + p.z;
  fe e = b - a, h = b + a;
  fe f = minus ? d + c : d - c;
  fe g = minus ? d - c : d + c;
  return point{e * f, g * h, f * g, e * h};
}

// 2p (dbl-2008-hwcd, a = -1).
point twice(const point& p) {
  fe a = square(p.x), b = square(p.y);
  fe zz = square(p.z);
  fe c = zz + zz;
  fe h = a + b;
  fe e = h - square(p.x + p.y);
  fe g = a - b;
  fe f = c + g;
  return point{e * f, g * h, f * g, e * h};
}

// p as a table holds it, given 1/Z.
niels to_niels(const point& p, const fe& zi) {
  fe x = p.x * zi, y = p.y * zi;
  return niels{y + x, y - x, x * y * k().d2};
}

// Signed digits of `window` bits: a scalar below 2^253 is the sum of
// digit[j]·2^(window·j), each digit in [-2^(window-1), 2^(window-1)].
constexpr int window = 6;
constexpr int digits = (253 + window - 1) / window; // 43
constexpr int multiples = 1 << (window - 1);        // 32

// i·2^(window·j)·P for i = 1..multiples, j < digits, at [j·multiples + i - 1].
using table = std::vector<niels>;

table make_table(point base) {
  table out;
  out.reserve(digits * multiples);
  std::array<point, multiples> row;
  std::array<fe, multiples> zi;
  for (int j = 0; j < digits; ++j) {
    row[0] = base;
    for (int i = 1; i < multiples; ++i)
      row[i] = add(row[i - 1], base);
    for (int i = 0; i < multiples; ++i)
      zi[i] = row[i].z;
    invert_all(zi.data(), multiples);
    for (int i = 0; i < multiples; ++i)
      out.push_back(to_niels(row[i], zi[i]));
    base = twice(row[multiples - 1]); // 2^window·2^(window·j)·P
  }
  return out;
}

std::array<signed char, digits> recode(const byte* s) {
  std::array<signed char, digits> e;
  for (int j = 0; j < digits; ++j) {
    int bit = j * window;
    unsigned chunk = s[bit / 8];
    if (bit / 8 + 1 < 32)
      chunk |= unsigned{s[bit / 8 + 1]} << 8;
    e[j] = static_cast<signed char>((chunk >> (bit % 8)) & ((1u << window) - 1));
  }
  int c = 0;
  for (int j = 0; j < digits - 1; ++j) {
    int d = e[j] + c;
    c = (d + multiples) >> window;
    e[j] = static_cast<signed char>(d - (c << window));
  }
  // Below 2^253 the top digit holds at most one bit, so the carry fits.
  e[digits - 1] = static_cast<signed char>(e[digits - 1] + c);
  return e;
}

// The table entries a product adds, in order, each with its sign. A
// verification reads about 86 entries scattered over two tables of 165 kB
// each; in the service the rest of its work (and PostgreSQL's, on the same
// cores) has pushed them out of the core's caches between two receipts, and
// waiting for each in turn took nearly as long as the arithmetic (23 µs a
// verification with the caches written over, 13 without). Knowing them all
// before the first addition, `sum` asks for each entry a few additions
// before it is needed, so the loads overlap the arithmetic.
struct entries {
  std::array<const niels*, 2 * digits> entry;
  std::array<bool, 2 * digits> minus;
  int size = 0;
  // Ahead of its use by this many additions (each ~0.15 µs, more than one
  // load from memory).
  static constexpr int ahead = 4;
};

// The two or three cache lines of an entry's 120 bytes.
void prefetch(const niels* e) {
  auto* first = reinterpret_cast<const char*>(e);
  __builtin_prefetch(first);
  __builtin_prefetch(first + 64);
  __builtin_prefetch(first + sizeof(niels) - 1);
}

// Appends the entries of digits `e` of table `t`, negated when `subtract`,
// and asks for the first few of them.
void collect(entries& out, const table& t, const std::array<signed char, digits>& e,
             bool subtract) {
  for (int j = 0; j < digits; ++j) {
    int d = e[j];
    if (d == 0)
      continue;
    const niels* entry = &t[j * multiples + (d < 0 ? -d : d) - 1];
    if (out.size < entries::ahead)
      prefetch(entry);
    out.entry[out.size] = entry;
    out.minus[out.size] = (d < 0) != subtract;
    ++out.size;
  }
}

point sum(const entries& es) {
  point acc = identity();
  for (int i = 0; i < es.size; ++i) {
    if (i + entries::ahead < es.size)
      prefetch(es.entry[i + entries::ahead]);
    acc = add(acc, *es.entry[i], es.minus[i]);
  }
  return acc;
}

const table& base_table() {
  static const table t = [] {
    byte encoded[32];
    std::memset(encoded, 0x66, sizeof encoded);
    encoded[0] = 0x58; // y = 4/5, x even (RFC 8032 §5.1)
    point b;
    decode_point(encoded, b); // a point: the base point's own encoding
    return make_table(b);
  }();
  return t;
}

} // namespace

struct ed25519_verifier::tables {
  std::once_flag built;
  table key; // of A
};

ed25519_verifier::ed25519_verifier(std::string_view public_key, bool tabled)
  : public_key_(public_key) {
  point a;
  if (public_key_.size() != 32
      || !decode_point(reinterpret_cast<const byte*>(public_key_.data()), a))
    return;
  // [8]A is the identity for the eight points of small order, and only for
  // them: under such a key [S]B - [k]A takes at most eight values whatever
  // the message, so anyone can make signatures that verify.
  point eight = twice(twice(twice(a)));
  if (is_zero(eight.x) && is_zero(eight.y - eight.z))
    return;
  usable_ = true;
  if (tabled)
    tables_ = std::make_shared<tables>();
}

struct ed25519_verifier::product {
  point p;          // [S]B - [k]A
  const byte* r;    // the signature's R, which p must encode to
};

std::optional<bool> ed25519_verifier::start(std::string_view message,
                                            std::string_view signature, product& out) const {
  if (!usable_ || signature.size() != 64)
    return false;
  if (!tables_)
    return ed25519_verify(public_key_, message, signature);
  auto* sig = reinterpret_cast<const byte*>(signature.data());
  if (!detail::ed25519_scalar_is_canonical(sig + 32))
    return false;
  auto& t = *tables_;
  std::call_once(t.built, [&] {
    point a;
    decode_point(reinterpret_cast<const byte*>(public_key_.data()), a); // usable_: it decodes
    t.key = make_table(a);
  });
  // S is known before k: the base point's first entries load while k is
  // hashed.
  entries es;
  collect(es, base_table(), recode(sig + 32), false);
  byte digest[64];
  CryptoPP::SHA512 hash;
  hash.Update(sig, 32);
  hash.Update(reinterpret_cast<const byte*>(public_key_.data()), 32);
  hash.Update(reinterpret_cast<const byte*>(message.data()), message.size());
  hash.Final(digest);
  auto h = detail::ed25519_scalar_reduce(digest);
  collect(es, t.key, recode(h.data()), true);
  out.p = sum(es);
  out.r = sig;
  return std::nullopt;
}

bool ed25519_verifier::verify(std::string_view message, std::string_view signature) const {
  product q;
  if (auto answer = start(message, signature, q))
    return *answer;
  auto encoded = encode_point(q.p, invert(q.p.z));
  return std::memcmp(encoded.data(), q.r, 32) == 0;
}

std::vector<bool> ed25519_verifier::verify_each(const std::vector<check>& checks) {
  std::vector<bool> out(checks.size(), false);
  std::vector<product> products;
  std::vector<std::size_t> at; // the check each product answers
  products.reserve(checks.size());
  at.reserve(checks.size());
  for (std::size_t i = 0; i < checks.size(); ++i) {
    product q;
    if (auto answer = checks[i].verifier->start(checks[i].message, checks[i].signature, q)) {
      out[i] = *answer;
    } else {
      products.push_back(q);
      at.push_back(i);
    }
  }
  std::vector<fe> zi(products.size());
  for (std::size_t i = 0; i < products.size(); ++i)
    zi[i] = products[i].p.z;
  invert_all(zi.data(), zi.size());
  for (std::size_t i = 0; i < products.size(); ++i) {
    auto encoded = encode_point(products[i].p, zi[i]);
    out[at[i]] = std::memcmp(encoded.data(), products[i].r, 32) == 0;
  }
  return out;
}

} // namespace ap::crypto

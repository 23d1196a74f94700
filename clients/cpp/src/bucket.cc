#include "flagsidecar/bucket.h"

#include <murmurhash.h>  // Debian's libmurmurhash-dev: MurmurHash3, the reference algorithm

#include <charconv>
#include <cmath>
#include <cstdint>
#include <system_error>

namespace flagsidecar {
namespace {

// Without a precision, to_chars writes the shortest form that reads back as the same double.
template <typename... Precision>
std::string Format(double number, std::chars_format format, Precision... precision) {
  char text[400];  // the longest fixed form of a double (309 digits) fits
  const auto [end, error] = std::to_chars(text, text + sizeof text, number, format, precision...);
  return error == std::errc() ? std::string(text, end) : std::string();
}

std::optional<std::string> NumberText(double number) {
  if (!std::isfinite(number)) return std::nullopt;
  if (number == 0) return "0";  // -0 too
  // A whole number's exact decimal value (1e23 is 99999999999999991611392), as Python's int()
  // and Go's FormatFloat(f, 'f', 0, 64) write it; the shortest form would round it.
  if (number == std::trunc(number)) return Format(number, std::chars_format::fixed, 0);
  if (std::fabs(number) < 1e-4) return Format(number, std::chars_format::scientific);
  return Format(number, std::chars_format::fixed);
}

}  // namespace

std::optional<std::string> BucketText(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return NumberText(value.get<double>());
  return std::nullopt;
}

std::optional<int> Bucket(std::string_view flag_key, const nlohmann::json& value) {
  const auto text = BucketText(value);
  if (!text) return std::nullopt;
  std::string key;
  key.reserve(flag_key.size() + 1 + text->size());
  key.append(flag_key).append(":").append(*text);
  std::uint32_t hash[1];
  lmmh_x86_32(key.data(), static_cast<unsigned int>(key.size()), 0, hash);
  return static_cast<int>((static_cast<std::uint64_t>(hash[0]) * kBucketCount) >> 32);
}

}  // namespace flagsidecar

// A split's bucket, computed as the sidecar does (README, "Percentage splits"), so that a C++
// program can reproduce it bit for bit.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace flagsidecar {

// The number of buckets a split divides users into.
inline constexpr int kBucketCount = 10000;

// The bucket in [0, kBucketCount) that the sidecar puts a bucket value in for a flag:
// MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of "<flag key>:<text>", times 10000,
// shifted right by 32. Empty when value cannot be bucketed on (see BucketText), as the sidecar
// then skips the rule.
std::optional<int> Bucket(std::string_view flag_key, const nlohmann::json& value);

// A context value as the sidecar hashes it: a string as it is, a boolean as true or false, a
// whole number in decimal with no fraction (42 for 42.0, 0 for -0), any other number in its
// shortest round-trip form, in exponent form (1e-05) only below 1e-4 in size. Numbers are taken
// as doubles, because protobuf carries every number as one. Empty for null, NaN, infinities,
// lists and objects.
std::optional<std::string> BucketText(const nlohmann::json& value);

}  // namespace flagsidecar

package flagsidecar

import (
	"math"
	"strconv"

	"github.com/twmb/murmur3"
)

// BucketCount is the number of buckets a split divides users into.
const BucketCount = 10000

// Bucket is the bucket in [0, BucketCount) that the sidecar puts a bucket value in for a flag
// (README, "Percentage splits"): MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of
// "<flag key>:<text>", times 10000, shifted right by 32. ok is false when value cannot be
// bucketed on (see BucketText), as the sidecar then skips the rule.
func Bucket(flagKey string, value any) (bucket int, ok bool) {
	text, ok := BucketText(value)
	if !ok {
		return 0, false
	}
	h := murmur3.Sum32([]byte(flagKey + ":" + text))
	return int((uint64(h) * BucketCount) >> 32), true
}

// BucketText writes a context value as the sidecar hashes it: a string as it is, a boolean as
// true or false, a whole number in decimal with no fraction (42 for 42.0, 0 for -0), any other
// number in its shortest round-trip form, in exponent form (1e-05) only below 1e-4 in size.
// Numbers are taken as float64, because protobuf carries every number as a double. ok is false
// for nil, NaN, infinities and other types.
func BucketText(value any) (text string, ok bool) {
	switch v := value.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return numberText(v)
	case float32:
		return numberText(float64(v))
	case int:
		return numberText(float64(v))
	case int32:
		return numberText(float64(v))
	case int64:
		return numberText(float64(v))
	case uint32:
		return numberText(float64(v))
	case uint64:
		return numberText(float64(v))
	}
	return "", false
}

func numberText(f float64) (string, bool) {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "", false
	case f == 0:
		return "0", true // -0 too
	case f == math.Trunc(f):
		return strconv.FormatFloat(f, 'f', 0, 64), true
	case math.Abs(f) < 1e-4:
		return strconv.FormatFloat(f, 'e', -1, 64), true
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// Branch-free conversions between storage types and float accumulators, written
// with integer and float arithmetic only so that the loops calling them
// vectorise on every ISA clone (c10's Half/BFloat16 operators do not).
// float16: the bit-level algorithm of IEEE binary16 <-> binary32 with round to
// nearest even (as F16C's vcvtps2ph with imm 0); bfloat16: upper 16 bits with
// round to nearest even, NaN kept quiet.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

namespace fastiqa {
namespace cpu {

#define FASTIQA_INLINE inline __attribute__((always_inline))

FASTIQA_INLINE float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
FASTIQA_INLINE uint32_t bits_from_f32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

FASTIQA_INLINE float half_bits_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  // normal and inf/nan: shift exponent+mantissa into place and rebias by 2^-112
  const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // subnormal: mantissa as the low bits of 0.5f's significand, minus 0.5
  const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t is_sub = 0u - static_cast<uint32_t>(two_w < (1u << 27));  // all ones if subnormal
  const uint32_t r = sign | (bits_from_f32(denormalized) & is_sub) | (bits_from_f32(normalized) & ~is_sub);
  return f32_from_bits(r);
}

FASTIQA_INLINE uint16_t float_to_half_bits(float f) {
  // scale so that the float rounding of `base` does the binary16 rounding
  float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = bits_from_f32(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  const uint32_t small = 0u - static_cast<uint32_t>(bias < 0x71000000u);
  bias = (0x71000000u & small) | (bias & ~small);
  base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = bits_from_f32(base);
  const uint32_t nonsign = ((b >> 13) & 0x00007C00u) + (b & 0x00000FFFu);
  const uint32_t is_nan = 0u - static_cast<uint32_t>(shl1_w > 0xFF000000u);
  return static_cast<uint16_t>((sign >> 16) | (0x7E00u & is_nan) | (nonsign & ~is_nan));
}

FASTIQA_INLINE uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = bits_from_f32(f);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t is_nan = 0u - static_cast<uint32_t>((u & 0x7FFFFFFFu) > 0x7F800000u);
  return static_cast<uint16_t>((((u >> 16) | 0x0040u) & is_nan) | (rounded & ~is_nan));
}

// Accumulator type of a storage type: float for float32 / float16 / bfloat16, double for float64.
template <typename T> struct AccOf { using type = float; };
template <> struct AccOf<double> { using type = double; };

template <typename A, typename T> FASTIQA_INLINE A to_acc(T v) { return static_cast<A>(v); }
template <> FASTIQA_INLINE float to_acc<float, c10::Half>(c10::Half v) { return half_bits_to_float(v.x); }
template <> FASTIQA_INLINE float to_acc<float, c10::BFloat16>(c10::BFloat16 v) {
  return f32_from_bits(static_cast<uint32_t>(v.x) << 16);
}

template <typename T, typename A> FASTIQA_INLINE T from_acc(A v) { return static_cast<T>(v); }
template <> FASTIQA_INLINE c10::Half from_acc<c10::Half, float>(float v) {
  return c10::Half(float_to_half_bits(v), c10::Half::from_bits());
}
template <> FASTIQA_INLINE c10::BFloat16 from_acc<c10::BFloat16, float>(float v) {
  return c10::BFloat16(float_to_bf16_bits(v), c10::BFloat16::from_bits());
}

}  // namespace cpu
}  // namespace fastiqa

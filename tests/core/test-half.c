/* f16 / bf16 conversions: the CPU side of what the shaders store. */
#include "dl-test-util.h"

#include "dl-half.h"

#include <math.h>
#include <string.h>

static float
bits_to_f32 (uint32_t u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

/* the f16 value of a bit pattern, computed independently with ldexp */
static double
f16_value (uint16_t h)
{
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp (m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp (1024 + m, e - 25);
  return s ? -v : v;
}

static void
test_f16_roundtrip_all (void)
{
  for (uint32_t h = 0; h < 65536; h++)
    {
      float f = dl_f16_to_f32 ((uint16_t)h);
      double want = f16_value ((uint16_t)h);
      if (isnan (want))
        {
          g_assert_true (isnan (f));
          g_assert_true ((dl_f32_to_f16 (f) & 0x7c00) == 0x7c00 && (dl_f32_to_f16 (f) & 0x3ff) != 0);
          continue;
        }
      g_assert_cmpfloat (f, ==, want);
      g_assert_cmpuint (dl_f32_to_f16 (f), ==, h);
    }
}

/* f32 -> f16 picks the nearer neighbour, ties to even, for many random floats */
static void
test_f16_rounding (void)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (7);
  for (int i = 0; i < 200000; i++)
    {
      /* exponents spanning subnormal to overflow */
      float x = bits_to_f32 (g_rand_int (r) & 0x7fffffffu);
      if (!isfinite (x) || fabsf (x) > 70000.0f || fabsf (x) < 1e-9f)
        x = (float)ldexp (g_rand_double (r), g_rand_int_range (r, -26, 17));
      if (g_rand_boolean (r))
        x = -x;
      uint16_t h = dl_f32_to_f16 (x);
      double v = f16_value (h);
      if (fabs (x) >= 65520.0)
        {
          g_assert_true (isinf (v));
          continue;
        }
      /* neighbours of h in value order */
      double up = f16_value ((uint16_t)(h + 1)), down = (h & 0x7fff) ? f16_value ((uint16_t)(h - 1)) : -v;
      double err = fabs (v - x);
      g_assert_cmpfloat (err, <=, fabs (up - x) + 0.0);
      g_assert_cmpfloat (err, <=, fabs (down - x) + 0.0);
      if (err == fabs (up - x) && err > 0)
        g_assert_cmpuint (h & 1, ==, 0); /* tie went to the even pattern */
    }
}

static void
test_f16_specials (void)
{
  g_assert_cmpuint (dl_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmpuint (dl_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmpuint (dl_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmpuint (dl_f32_to_f16 (-INFINITY), ==, 0xfc00);
  g_assert_cmpuint (dl_f32_to_f16 (ldexpf (1, -24)), ==, 0x0001); /* smallest subnormal */
  g_assert_cmpuint (dl_f32_to_f16 (ldexpf (1, -25)), ==, 0x0000); /* tie to even: zero */
  g_assert_cmpuint (dl_f32_to_f16 (ldexpf (3, -26)), ==, 0x0001); /* 0.75 ulp rounds up */
  g_assert_cmpuint (dl_f32_to_f16 (-0.0f), ==, 0x8000);
  g_assert_cmpuint (dl_f32_to_f16 (1.0f + ldexpf (1, -11)), ==, 0x3c00); /* tie: even */
  g_assert_cmpuint (dl_f32_to_f16 (1.0f + 3 * ldexpf (1, -11)), ==, 0x3c02);
}

static void
test_bf16 (void)
{
  for (uint32_t h = 0; h < 65536; h++)
    {
      float f = dl_bf16_to_f32 ((uint16_t)h);
      if (isnan (f))
        continue;
      g_assert_cmpuint (dl_f32_to_bf16 (f), ==, h);
    }
  g_assert_cmpuint (dl_f32_to_bf16 (1.0f), ==, 0x3f80);
  g_assert_cmpuint (dl_f32_to_bf16 (bits_to_f32 (0x3f808000u)), ==, 0x3f80); /* tie: even */
  g_assert_cmpuint (dl_f32_to_bf16 (bits_to_f32 (0x3f818000u)), ==, 0x3f82); /* tie: even up */
  g_assert_cmpuint (dl_f32_to_bf16 (bits_to_f32 (0x3f808001u)), ==, 0x3f81);
  g_assert_true (isnan (dl_bf16_to_f32 (dl_f32_to_bf16 (NAN))));
}

static void
test_convert (void)
{
  float src[5] = { 1.5f, -2.25f, 65504.0f, 0.1f, -7.9f };
  uint16_t h[5];
  float back[5];
  int32_t ints[5];
  dl_convert (h, DL_DTYPE_F16, src, DL_DTYPE_F32, 5);
  dl_convert (back, DL_DTYPE_F32, h, DL_DTYPE_F16, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (back[i], ==, dl_f16_to_f32 (dl_f32_to_f16 (src[i])));
  dl_convert (ints, DL_DTYPE_I32, src, DL_DTYPE_F32, 5);
  g_assert_cmpint (ints[0], ==, 1);
  g_assert_cmpint (ints[4], ==, -7);
  dl_convert (h, DL_DTYPE_BF16, h, DL_DTYPE_F16, 5); /* in place through float */
  g_assert_cmpfloat (dl_bf16_to_f32 (h[1]), ==, -2.25f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/half/f16/roundtrip-all", test_f16_roundtrip_all);
  g_test_add_func ("/half/f16/rounding", test_f16_rounding);
  g_test_add_func ("/half/f16/specials", test_f16_specials);
  g_test_add_func ("/half/bf16", test_bf16);
  g_test_add_func ("/half/convert", test_convert);
  return g_test_run ();
}

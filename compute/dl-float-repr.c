/* dl-float-repr.c: see dl-float-repr.h. */
#include "dl-float-repr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The digits of `v` (> 0, finite) with `ndigits` significant digits, correctly
 * rounded, and the exponent e of v = d.ddd × 10^e. */
static void
sci_digits (double v, int ndigits, char *digits, int *exp10)
{
  char buf[64];
  snprintf (buf, sizeof buf, "%.*e", ndigits - 1, v);
  int n = 0;
  const char *p = buf;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9')
      digits[n++] = *p;
  digits[n] = '\0';
  *exp10 = atoi (p + 1);
}

/* Does digits × 10^(exp10 - ndigits + 1) read back as v? */
static gboolean
reads_back (const char *digits, int exp10, double v)
{
  char buf[64];
  snprintf (buf, sizeof buf, "%c.%se%d", digits[0], digits + 1, exp10);
  return g_ascii_strtod (buf, NULL) == v; /* snprintf above is locale-free for %c.%se%d */
}

/* Add `delta` (+1 or -1) to the last digit, carrying; FALSE when the digit
 * count would change (those candidates are never shorter). */
static gboolean
step_last_digit (char *digits, int *exp10, int delta)
{
  int n = (int)strlen (digits);
  for (int i = n - 1; i >= 0; i--)
    {
      int d = digits[i] - '0' + delta;
      if (d >= 0 && d <= 9)
        {
          digits[i] = (char)('0' + d);
          return digits[0] != '0';
        }
      digits[i] = delta > 0 ? '0' : '9';
    }
  (void)exp10;
  return FALSE;
}

/* The shortest digit string that reads back as v (> 0, finite), nearest to v
 * among those of its length, as David Gay's dtoa mode 0 (Python's repr) gives. */
static void
shortest_digits (double v, char *digits, int *exp10)
{
  for (int nd = 1; nd <= 17; nd++)
    {
      sci_digits (v, nd, digits, exp10);
      if (reads_back (digits, *exp10, v))
        return;
      /* Next to a power of two the interval that reads back as v is lopsided, so
     * the nearest string may miss while its neighbour on the wide side hits. */
      for (int delta = -1; delta <= 1; delta += 2)
        {
          char cand[32];
          int e = *exp10;
          strcpy (cand, digits);
          if (step_last_digit (cand, &e, delta) && reads_back (cand, e, v))
            {
              strcpy (digits, cand);
              return;
            }
        }
    }
  sci_digits (v, 17, digits, exp10); /* 17 digits always read back */
}

char *
dl_python_float_repr (double v)
{
  if (isnan (v))
    return g_strdup ("nan");
  if (isinf (v))
    return g_strdup (v < 0 ? "-inf" : "inf");
  if (v == 0)
    return g_strdup (signbit (v) ? "-0.0" : "0.0");
  char digits[32];
  int exp10;
  shortest_digits (fabs (v), digits, &exp10);
  int n = (int)strlen (digits);
  while (n > 1 && digits[n - 1] == '0')
    digits[--n] = '\0';
  int decpt = exp10 + 1; /* v = 0.ddd × 10^decpt */
  GString *s = g_string_new (v < 0 ? "-" : "");
  if (decpt <= -4 || decpt > 16)
    {
      g_string_append_c (s, digits[0]);
      if (n > 1)
        g_string_append_printf (s, ".%s", digits + 1);
      g_string_append_printf (s, "e%c%02d", exp10 < 0 ? '-' : '+', abs (exp10));
    }
  else if (decpt <= 0)
    {
      g_string_append (s, "0.");
      for (int i = 0; i < -decpt; i++)
        g_string_append_c (s, '0');
      g_string_append (s, digits);
    }
  else if (decpt < n)
    {
      g_string_append_len (s, digits, decpt);
      g_string_append_printf (s, ".%s", digits + decpt);
    }
  else
    {
      g_string_append (s, digits);
      for (int i = n; i < decpt; i++)
        g_string_append_c (s, '0');
      g_string_append (s, ".0");
    }
  return g_string_free (s, FALSE);
}

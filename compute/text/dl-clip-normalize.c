/* Prompt clean-up and pre-tokenising for the CLIP tokenizer.  Written from the
 * documented behaviour of ftfy 6.1 (fixes.py, chardata.py) and transformers'
 * CLIPTokenizer; no code of theirs is used. */
#include "dl-clip-normalize.h"

#include <string.h>

/* ---- ftfy's fixes ---- */

/* What Windows-1252 (as browsers decode it) makes of bytes 0x80-0x9f; the
 * undefined five stay themselves. */
static const gunichar cp1252_c1[32] = {
  0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
  0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
  0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static const struct
{
  const char *name;
  gunichar c;
} entities[] = {
  { "amp", '&' },       { "lt", '<' },        { "gt", '>' },        { "quot", '"' },      { "apos", '\'' },
  { "nbsp", 0xA0 },     { "iexcl", 0xA1 },    { "cent", 0xA2 },     { "pound", 0xA3 },    { "curren", 0xA4 },
  { "yen", 0xA5 },      { "brvbar", 0xA6 },   { "sect", 0xA7 },     { "uml", 0xA8 },      { "copy", 0xA9 },
  { "ordf", 0xAA },     { "laquo", 0xAB },    { "not", 0xAC },      { "shy", 0xAD },      { "reg", 0xAE },
  { "macr", 0xAF },     { "deg", 0xB0 },      { "plusmn", 0xB1 },   { "sup2", 0xB2 },     { "sup3", 0xB3 },
  { "acute", 0xB4 },    { "micro", 0xB5 },    { "para", 0xB6 },     { "middot", 0xB7 },   { "cedil", 0xB8 },
  { "sup1", 0xB9 },     { "ordm", 0xBA },     { "raquo", 0xBB },    { "frac14", 0xBC },   { "frac12", 0xBD },
  { "frac34", 0xBE },   { "iquest", 0xBF },   { "Agrave", 0xC0 },   { "Aacute", 0xC1 },   { "Acirc", 0xC2 },
  { "Atilde", 0xC3 },   { "Auml", 0xC4 },     { "Aring", 0xC5 },    { "AElig", 0xC6 },    { "Ccedil", 0xC7 },
  { "Egrave", 0xC8 },   { "Eacute", 0xC9 },   { "Ecirc", 0xCA },    { "Euml", 0xCB },     { "Igrave", 0xCC },
  { "Iacute", 0xCD },   { "Icirc", 0xCE },    { "Iuml", 0xCF },     { "ETH", 0xD0 },      { "Ntilde", 0xD1 },
  { "Ograve", 0xD2 },   { "Oacute", 0xD3 },   { "Ocirc", 0xD4 },    { "Otilde", 0xD5 },   { "Ouml", 0xD6 },
  { "times", 0xD7 },    { "Oslash", 0xD8 },   { "Ugrave", 0xD9 },   { "Uacute", 0xDA },   { "Ucirc", 0xDB },
  { "Uuml", 0xDC },     { "Yacute", 0xDD },   { "THORN", 0xDE },    { "szlig", 0xDF },    { "agrave", 0xE0 },
  { "aacute", 0xE1 },   { "acirc", 0xE2 },    { "atilde", 0xE3 },   { "auml", 0xE4 },     { "aring", 0xE5 },
  { "aelig", 0xE6 },    { "ccedil", 0xE7 },   { "egrave", 0xE8 },   { "eacute", 0xE9 },   { "ecirc", 0xEA },
  { "euml", 0xEB },     { "igrave", 0xEC },   { "iacute", 0xED },   { "icirc", 0xEE },    { "iuml", 0xEF },
  { "eth", 0xF0 },      { "ntilde", 0xF1 },   { "ograve", 0xF2 },   { "oacute", 0xF3 },   { "ocirc", 0xF4 },
  { "otilde", 0xF5 },   { "ouml", 0xF6 },     { "divide", 0xF7 },   { "oslash", 0xF8 },   { "ugrave", 0xF9 },
  { "uacute", 0xFA },   { "ucirc", 0xFB },    { "uuml", 0xFC },     { "yacute", 0xFD },   { "thorn", 0xFE },
  { "yuml", 0xFF },     { "OElig", 0x152 },   { "oelig", 0x153 },   { "Scaron", 0x160 },  { "scaron", 0x161 },
  { "Yuml", 0x178 },    { "fnof", 0x192 },    { "circ", 0x2C6 },    { "tilde", 0x2DC },   { "ensp", 0x2002 },
  { "emsp", 0x2003 },   { "thinsp", 0x2009 }, { "zwnj", 0x200C },   { "zwj", 0x200D },    { "lrm", 0x200E },
  { "rlm", 0x200F },    { "ndash", 0x2013 },  { "mdash", 0x2014 },  { "lsquo", 0x2018 },  { "rsquo", 0x2019 },
  { "sbquo", 0x201A },  { "ldquo", 0x201C },  { "rdquo", 0x201D },  { "bdquo", 0x201E },  { "dagger", 0x2020 },
  { "Dagger", 0x2021 }, { "bull", 0x2022 },   { "hellip", 0x2026 }, { "permil", 0x2030 }, { "prime", 0x2032 },
  { "Prime", 0x2033 },  { "lsaquo", 0x2039 }, { "rsaquo", 0x203A }, { "euro", 0x20AC },   { "trade", 0x2122 },
  { "larr", 0x2190 },   { "uarr", 0x2191 },   { "rarr", 0x2192 },   { "darr", 0x2193 },   { "harr", 0x2194 },
  { "hearts", 0x2665 }, { "spades", 0x2660 }, { "clubs", 0x2663 },  { "diams", 0x2666 },
};

static gboolean
is_lower_ascii (const char *s, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_islower (s[i]) && !g_ascii_isdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* A named reference: the exact name, or (ftfy) a lower-case name written in
 * capitals, which gives the capital letter. */
static gboolean
named_entity (const char *name, gsize n, GString *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (entities); i++)
    if (strlen (entities[i].name) == n && memcmp (entities[i].name, name, n) == 0)
      {
        g_string_append_unichar (out, entities[i].c);
        return TRUE;
      }
  for (guint i = 0; i < G_N_ELEMENTS (entities); i++)
    {
      const char *e = entities[i].name;
      if (strlen (e) == n && g_ascii_strncasecmp (e, name, n) == 0 && is_lower_ascii (e, n))
        {
          for (gsize k = 0; k < n; k++)
            if (!g_ascii_isupper (name[k]) && !g_ascii_isdigit (name[k]))
              return FALSE;
          char buf[8];
          int len = g_unichar_to_utf8 (entities[i].c, buf);
          g_autofree char *up = g_utf8_strup (buf, len);
          g_string_append (out, up);
          return TRUE;
        }
    }
  return FALSE;
}

/* &#65; &#x41; as Python's html.unescape reads them. */
static gboolean
numeric_entity (const char *s, gsize n, GString *out)
{
  gboolean hex = n > 1 && (s[0] == 'x' || s[0] == 'X');
  const char *d = hex ? s + 1 : s;
  gsize nd = hex ? n - 1 : n;
  if (nd == 0)
    return FALSE;
  guint64 v = 0;
  for (gsize i = 0; i < nd; i++)
    {
      int digit = hex ? g_ascii_xdigit_value (d[i]) : g_ascii_digit_value (d[i]);
      if (digit < 0)
        return FALSE; /* only part would be decoded: ftfy keeps the text */
      v = MIN (v * (hex ? 16 : 10) + (guint64)digit, (guint64)0x7fffffff);
    }
  gunichar c;
  if (v == 0)
    c = 0xFFFD;
  else if (v == 0x0d)
    c = '\r';
  else if (v >= 0x80 && v <= 0x9f)
    c = cp1252_c1[v - 0x80];
  else if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
    c = 0xFFFD;
  else if ((v >= 0x1 && v <= 0x8) || v == 0xb || (v >= 0xe && v <= 0x1f) || v == 0x7f || (v >= 0xFDD0 && v <= 0xFDEF) ||
           (v & 0xFFFE) == 0xFFFE)
    return TRUE; /* an invalid code point: removed */
  else
    c = (gunichar)v;
  g_string_append_unichar (out, c);
  return TRUE;
}

/* &#?[0-9A-Za-z]{1,24}; */
static char *
unescape_html (const char *s)
{
  GString *out = g_string_new (NULL);
  while (*s)
    {
      if (*s == '&')
        {
          const char *p = s + 1;
          gboolean num = *p == '#';
          if (num)
            p++;
          gsize n = 0;
          while (n < 25 && g_ascii_isalnum (p[n]))
            n++;
          if (n >= 1 && n <= 24 && p[n] == ';')
            {
              gsize before = out->len;
              if (num ? numeric_entity (p, n, out) : named_entity (p, n, out))
                {
                  s = p + n + 1;
                  continue;
                }
              g_string_truncate (out, before);
            }
        }
      g_string_append_c (out, *s++);
    }
  return g_string_free (out, FALSE);
}

static const char *
ligature (gunichar c)
{
  switch (c)
    {
    case 0x0132:
      return "IJ";
    case 0x0133:
      return "ij";
    case 0x0149:
      return "\xca\xbcn"; /* ʼn */
    case 0x01F1:
      return "DZ";
    case 0x01F2:
      return "Dz";
    case 0x01F3:
      return "dz";
    case 0x01C4:
      return "D\xc5\xbd"; /* DŽ */
    case 0x01C5:
      return "D\xc5\xbe"; /* Dž */
    case 0x01C6:
      return "d\xc5\xbe"; /* dž */
    case 0x01C7:
      return "LJ";
    case 0x01C8:
      return "Lj";
    case 0x01C9:
      return "lj";
    case 0x01CA:
      return "NJ";
    case 0x01CB:
      return "Nj";
    case 0x01CC:
      return "nj";
    case 0xFB00:
      return "ff";
    case 0xFB01:
      return "fi";
    case 0xFB02:
      return "fl";
    case 0xFB03:
      return "ffi";
    case 0xFB04:
      return "ffl";
    case 0xFB05:
      return "\xc5\xbft"; /* ſt */
    case 0xFB06:
      return "st";
    default:
      return NULL;
    }
}

static gboolean
is_removed_control (gunichar c)
{
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

typedef enum
{
  PASS_C1,
  PASS_LIGATURES,
  PASS_WIDTH,
  PASS_QUOTES,
  PASS_LINE_BREAKS,
  PASS_TERMINAL_ESCAPES,
  PASS_CONTROLS,
  N_PASSES
} Pass;

/* One of ftfy's character fixes over the whole text. */
static char *
fix_pass (const char *s, Pass pass)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p;)
    {
      gunichar c = g_utf8_get_char (p);
      const char *next = g_utf8_next_char (p);
      switch (pass)
        {
        case PASS_C1:
          if (c >= 0x80 && c <= 0x9f)
            c = cp1252_c1[c - 0x80];
          break;
        case PASS_LIGATURES:
          if (ligature (c))
            {
              g_string_append (out, ligature (c));
              p = next;
              continue;
            }
          break;
        case PASS_WIDTH:
          if (c == 0x3000)
            c = ' ';
          else if (c >= 0xFF01 && c <= 0xFFEF)
            {
              g_autofree char *k = g_utf8_normalize (p, next - p, G_NORMALIZE_NFKC);
              if (k)
                {
                  g_string_append (out, k);
                  p = next;
                  continue;
                }
            }
          break;
        case PASS_QUOTES:
          if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
            c = '\'';
          else if (c >= 0x201C && c <= 0x201F)
            c = '"';
          break;
        case PASS_LINE_BREAKS:
          if (c == '\r' && *next == '\n')
            next++;
          if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
            c = '\n';
          break;
        case PASS_TERMINAL_ESCAPES:
          if (c == 0x1B && *next == '[')
            {
              const char *q = next + 1;
              while (g_ascii_isdigit (*q) || *q == ';')
                q++;
              if (g_ascii_isalpha (*q))
                {
                  p = q + 1;
                  continue;
                }
            }
          break;
        case PASS_CONTROLS:
          if (is_removed_control (c))
            {
              p = next;
              continue;
            }
          break;
        default:
          break;
        }
      g_string_append_unichar (out, c);
      p = next;
    }
  return g_string_free (out, FALSE);
}

static char *
fix_segment (const char *segment, gboolean unescape)
{
  char *text = g_strdup (segment);
  /* ftfy repeats its fixes until the text stops changing */
  for (int round = 0; round < 16; round++)
    {
      char *t = unescape ? unescape_html (text) : g_strdup (text);
      for (int pass = 0; pass < N_PASSES; pass++)
        {
          char *next = fix_pass (t, (Pass)pass);
          g_free (t);
          t = next;
        }
      char *t3 = g_utf8_normalize (t, -1, G_NORMALIZE_NFC);
      g_free (t);
      gboolean same = strcmp (t3, text) == 0;
      g_free (text);
      text = t3;
      if (same)
        break;
    }
  return text;
}

char *
dl_clip_normalize_fix (const char *text)
{
  g_return_val_if_fail (text != NULL && g_utf8_validate (text, -1, NULL), NULL);
  /* ftfy works line by line; HTML entities are left alone from the first line
   * that holds a '<' (it may be real HTML) */
  GString *out = g_string_new (NULL);
  gboolean unescape = TRUE;
  const char *p = text;
  while (*p)
    {
      const char *nl = strchr (p, '\n');
      gsize n = nl ? (gsize)(nl - p) + 1 : strlen (p);
      g_autofree char *segment = g_strndup (p, n);
      if (strchr (segment, '<'))
        unescape = FALSE;
      g_autofree char *fixed = fix_segment (segment, unescape);
      g_string_append (out, fixed);
      p += n;
    }
  return g_string_free (out, FALSE);
}

/* ---- white space and case ---- */

/* Unicode White_Space (what the `regex` module's \s matches) */
static gboolean
is_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static gboolean
is_letter (gunichar c)
{
  switch (g_unichar_type (c))
    {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
is_number (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  return t == G_UNICODE_DECIMAL_NUMBER || t == G_UNICODE_LETTER_NUMBER || t == G_UNICODE_OTHER_NUMBER;
}

static gboolean
is_cased_letter (gunichar c)
{
  return g_unichar_isupper (c) || g_unichar_islower (c) || g_unichar_istitle (c);
}

/* Python's str.lower(): the full mapping, independent of the locale. */
static void
append_lower (GString *out, const gunichar *u, glong n, glong i)
{
  gunichar c = u[i];
  if (c == 0x0130)
    {
      g_string_append (out, "i\xcc\x87"); /* i + combining dot above */
      return;
    }
  if (c == 0x03A3)
    {
      /* final sigma: after a cased letter and not before one (ignoring
       * case-ignorable marks) */
      glong b = i - 1, f = i + 1;
      while (b >= 0 && (g_unichar_ismark (u[b]) || g_unichar_type (u[b]) == G_UNICODE_FORMAT))
        b--;
      while (f < n && (g_unichar_ismark (u[f]) || g_unichar_type (u[f]) == G_UNICODE_FORMAT))
        f++;
      gboolean final = b >= 0 && is_cased_letter (u[b]) && !(f < n && is_cased_letter (u[f]));
      g_string_append_unichar (out, final ? 0x03C2 : 0x03C3);
      return;
    }
  g_string_append_unichar (out, g_unichar_tolower (c));
}

char *
dl_clip_normalize_clean (const char *text)
{
  g_return_val_if_fail (text != NULL && g_utf8_validate (text, -1, NULL), NULL);
  g_autofree char *fixed = dl_clip_normalize_fix (text);
  glong n = 0;
  g_autofree gunichar *u = g_utf8_to_ucs4_fast (fixed, -1, &n);
  /* runs of white space -> one space, ends stripped, then lower case */
  g_autofree gunichar *w = g_new (gunichar, n + 1);
  glong m = 0;
  for (glong i = 0; i < n; i++)
    {
      if (is_space (u[i]))
        {
          if (m > 0 && w[m - 1] != ' ')
            w[m++] = ' ';
        }
      else
        w[m++] = u[i];
    }
  if (m > 0 && w[m - 1] == ' ')
    m--;
  GString *out = g_string_new (NULL);
  for (glong i = 0; i < m; i++)
    append_lower (out, w, m, i);
  return g_string_free (out, FALSE);
}

/* ---- the pre-tokenising pattern ---- */

/* `want` (lower-case ASCII) under the pattern's IGNORECASE: simple case
 * folding also lets U+017F LONG S match 's'. */
static gboolean
fold_eq (gunichar c, char want)
{
  return c == (gunichar)want || g_unichar_tolower (c) == (gunichar)want || (want == 's' && c == 0x017F);
}

/* Length in characters of `lit` matched at u[i], or 0. */
static glong
match_literal (const gunichar *u, glong n, glong i, const char *lit)
{
  glong k = 0;
  for (; lit[k]; k++)
    if (i + k >= n || !fold_eq (u[i + k], lit[k]))
      return 0;
  return k;
}

GPtrArray *
dl_clip_normalize_split (const char *cleaned)
{
  g_return_val_if_fail (cleaned != NULL && g_utf8_validate (cleaned, -1, NULL), NULL);
  static const char *const literals[] = {
    "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"
  };
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  glong n = 0;
  g_autofree gunichar *u = g_utf8_to_ucs4_fast (cleaned, -1, &n);
  glong i = 0;
  while (i < n)
    {
      glong len = 0;
      for (guint k = 0; k < G_N_ELEMENTS (literals) && !len; k++)
        len = match_literal (u, n, i, literals[k]);
      if (!len)
        {
          if (is_letter (u[i]))
            while (i + len < n && is_letter (u[i + len]))
              len++;
          else if (is_number (u[i]))
            len = 1;
          else if (!is_space (u[i]))
            while (i + len < n && !is_space (u[i + len]) && !is_letter (u[i + len]) && !is_number (u[i + len]))
              len++;
        }
      if (len == 0)
        {
          i++; /* white space between pieces */
          continue;
        }
      g_ptr_array_add (out, g_ucs4_to_utf8 (u + i, len, NULL, NULL, NULL));
      i += len;
    }
  return out;
}

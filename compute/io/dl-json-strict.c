#include "dl-json-strict.h"

#include <string.h>

typedef struct
{
  const char *p;
  gsize len;
  gsize pos;
  guint max_depth;
  char *problem;
} Scan;

static gboolean G_GNUC_PRINTF (2, 3) fail (Scan *s, const char *fmt, ...)
{
  if (s->problem)
    return FALSE;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  s->problem = g_strdup_printf ("invalid JSON at byte %" G_GSIZE_FORMAT ": %s", s->pos, msg);
  return FALSE;
}

static void
skip_ws (Scan *s)
{
  while (s->pos < s->len)
    {
      char c = s->p[s->pos];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      s->pos++;
    }
}

static int
peek (Scan *s)
{
  return s->pos < s->len ? (guchar)s->p[s->pos] : -1;
}

static int
hex4 (Scan *s)
{
  if (s->len - s->pos < 4)
    return -1;
  int v = 0;
  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (s->p[s->pos + i]);
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  s->pos += 4;
  return v;
}

static gboolean
scan_string (Scan *s)
{
  s->pos++; /* the opening quote */
  while (s->pos < s->len)
    {
      guchar c = (guchar)s->p[s->pos];
      if (c == '"')
        {
          s->pos++;
          return TRUE;
        }
      if (c < 0x20)
        return fail (s, "unescaped control character 0x%02x in a string", c);
      if (c != '\\')
        {
          s->pos++;
          continue;
        }
      s->pos++;
      if (s->pos >= s->len)
        break;
      c = (guchar)s->p[s->pos++];
      if (strchr ("\"\\/bfnrt", c) != NULL && c != 0)
        continue;
      if (c != 'u')
        return fail (s, "invalid escape \\%c", c >= 0x20 && c < 0x7f ? c : '?');
      int u = hex4 (s);
      if (u < 0)
        return fail (s, "\\u is not followed by 4 hex digits");
      if (u == 0)
        return fail (s, "a string contains \\u0000 (NUL), which is not supported");
      if (u >= 0xDC00 && u <= 0xDFFF)
        return fail (s, "lone low surrogate \\u%04X", (guint)u);
      if (u >= 0xD800 && u <= 0xDBFF)
        {
          if (s->len - s->pos < 2 || s->p[s->pos] != '\\' || s->p[s->pos + 1] != 'u')
            return fail (s, "high surrogate \\u%04X is not followed by a low surrogate", (guint)u);
          s->pos += 2;
          int lo = hex4 (s);
          if (lo < 0xDC00 || lo > 0xDFFF)
            return fail (s, "high surrogate \\u%04X is not followed by a low surrogate", (guint)u);
        }
    }
  return fail (s, "unterminated string");
}

static gboolean
scan_digits (Scan *s)
{
  gsize start = s->pos;
  while (s->pos < s->len && g_ascii_isdigit (s->p[s->pos]))
    s->pos++;
  return s->pos > start;
}

static gboolean
scan_number (Scan *s)
{
  gsize start = s->pos;
  gboolean negative = FALSE;
  if (peek (s) == '-')
    {
      negative = TRUE;
      s->pos++;
    }
  gsize int_start = s->pos;
  if (peek (s) == '0')
    {
      s->pos++;
      if (g_ascii_isdigit (peek (s)))
        return fail (s, "a number has a leading zero");
    }
  else if (!scan_digits (s))
    return fail (s, "invalid number");
  gsize int_end = s->pos;
  gboolean is_int = TRUE;
  if (peek (s) == '.')
    {
      s->pos++;
      is_int = FALSE;
      if (!scan_digits (s))
        return fail (s, "a number has no digits after the decimal point");
    }
  if (peek (s) == 'e' || peek (s) == 'E')
    {
      s->pos++;
      is_int = FALSE;
      if (peek (s) == '+' || peek (s) == '-')
        s->pos++;
      if (!scan_digits (s))
        return fail (s, "a number has no digits in its exponent");
    }
  if (is_int)
    {
      /* json-glib wraps integers outside int64 without a word; refuse them. */
      const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
      gsize nd = int_end - int_start;
      if (nd > 19 || (nd == 19 && memcmp (s->p + int_start, limit, 19) > 0))
        {
          s->pos = start;
          return fail (s, "integer %.*s does not fit in 64 bits", (int)MIN (int_end - start, 40), s->p + start);
        }
    }
  return TRUE;
}

static gboolean
unexpected (Scan *s)
{
  int c = peek (s);
  if (c > 0x20 && c < 0x7f)
    return fail (s, "unexpected character '%c'", c);
  return fail (s, "unexpected character (byte 0x%02x)", (guint)c);
}

static gboolean
scan_literal (Scan *s, const char *word)
{
  gsize n = strlen (word);
  if (s->len - s->pos < n || memcmp (s->p + s->pos, word, n) != 0)
    return unexpected (s);
  s->pos += n;
  return TRUE;
}

static gboolean scan_value (Scan *s, guint depth);

static gboolean
scan_container (Scan *s, guint depth, gboolean object)
{
  char close = object ? '}' : ']';
  if (depth >= s->max_depth)
    return fail (s, "nested more than %u levels deep", s->max_depth);
  s->pos++;
  skip_ws (s);
  if (peek (s) == close)
    {
      s->pos++;
      return TRUE;
    }
  for (;;)
    {
      skip_ws (s);
      if (object)
        {
          if (peek (s) != '"')
            return fail (s, "expected a member name in double quotes");
          if (!scan_string (s))
            return FALSE;
          skip_ws (s);
          if (peek (s) != ':')
            return fail (s, "expected ':' after a member name");
          s->pos++;
        }
      if (!scan_value (s, depth + 1))
        return FALSE;
      skip_ws (s);
      int c = peek (s);
      if (c == close)
        {
          s->pos++;
          return TRUE;
        }
      if (c != ',')
        return fail (s, "expected ',' or '%c'", close);
      s->pos++;
    }
}

static gboolean
scan_value (Scan *s, guint depth)
{
  skip_ws (s);
  switch (peek (s))
    {
    case '{':
      return scan_container (s, depth, TRUE);
    case '[':
      return scan_container (s, depth, FALSE);
    case '"':
      return scan_string (s);
    case 't':
      return scan_literal (s, "true");
    case 'f':
      return scan_literal (s, "false");
    case 'n':
      return scan_literal (s, "null");
    case -1:
      return fail (s, "unexpected end of the text");
    default:
      if (peek (s) == '-' || g_ascii_isdigit (peek (s)))
        return scan_number (s);
      return unexpected (s);
    }
}

gboolean
dl_json_check_strict (const char *text, gsize len, guint max_depth, char **problem)
{
  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  Scan s = { text, len, 0, max_depth, NULL };
  const char *bad = NULL;
  if (!g_utf8_validate_len (text, len, &bad))
    {
      s.pos = (gsize)(bad - text);
      fail (&s, "not valid UTF-8 (or a NUL byte)");
    }
  else if (scan_value (&s, 0))
    {
      skip_ws (&s);
      if (s.pos != s.len)
        fail (&s, "unexpected text after the end of the document");
    }
  if (s.problem)
    {
      if (problem)
        *problem = s.problem;
      else
        g_free (s.problem);
      return FALSE;
    }
  return TRUE;
}

/* json-glib keeps the last of two members with the same name; it announces every
 * member as it is added, so count them ourselves. */
typedef struct
{
  GHashTable *seen; /* JsonObject* -> GHashTable of names */
  char *duplicate;
} DupCheck;

static void
on_object_member (JsonParser *parser, JsonObject *object, const char *name, gpointer user_data)
{
  DupCheck *dc = user_data;
  GHashTable *names = g_hash_table_lookup (dc->seen, object);
  if (!names)
    {
      names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (dc->seen, object, names);
    }
  if (!g_hash_table_add (names, g_strdup (name)) && !dc->duplicate)
    dc->duplicate = g_strdup (name);
}

JsonParser *
dl_json_parse_strict (const char *text, gsize len, guint max_depth, char **problem)
{
  if (!dl_json_check_strict (text, len, max_depth, problem))
    return NULL;
  if (len > G_MAXSSIZE)
    {
      *problem = g_strdup ("text too large");
      return NULL;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  DupCheck dc = { g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)g_hash_table_unref),
                  NULL };
  gulong id = g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), &dc);
  g_autoptr (GError) error = NULL;
  gboolean ok = json_parser_load_from_data (parser, text, (gssize)len, &error);
  g_signal_handler_disconnect (parser, id);
  g_hash_table_unref (dc.seen);
  g_autofree char *duplicate = dc.duplicate;
  if (!ok)
    {
      *problem = g_strdup_printf ("invalid JSON: %s", error->message);
      return NULL;
    }
  if (duplicate)
    {
      *problem = g_strdup_printf ("the name “%s” appears twice in one JSON object", duplicate);
      return NULL;
    }
  if (!json_parser_get_root (parser))
    {
      *problem = g_strdup ("empty JSON document");
      return NULL;
    }
  return g_steal_pointer (&parser);
}

/* dl-json-write.c: see dl-json-write.h. */
#include "dl-config.h"

#include "io/dl-json-write.h"

#include "dl-float-repr.h"

#include <math.h>
#include <string.h>

void
dl_json_append_double (GString *out, double v)
{
  if (!isfinite (v))
    {
      g_string_append (out, "null");
      return;
    }
  /* Python's repr: shortest, exact, and 2.0 stays a double when read back */
  g_autofree char *text = dl_python_float_repr (v);
  g_string_append (out, text);
}

/* `s` quoted, with JSON's escapes; ascii_only: every other character past
 * 0x7e as \uXXXX (UTF-16 surrogate pairs above U+FFFF), as Python's
 * json.dumps does by default (ensure_ascii). */
static void
append_string (GString *out, const char *s, gboolean ascii_only)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p; p = ascii_only ? g_utf8_next_char (p) : p + 1)
    {
      gunichar c = ascii_only ? g_utf8_get_char (p) : (unsigned char)*p;
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        default:
          if (c < 0x20 || c == 0x7f || (ascii_only && c > 0x7e && c < 0x10000))
            g_string_append_printf (out, "\\u%04x", c);
          else if (ascii_only && c >= 0x10000)
            {
              gunichar u = c - 0x10000;
              g_string_append_printf (out, "\\u%04x\\u%04x", 0xd800 + (u >> 10), 0xdc00 + (u & 0x3ff));
            }
          else
            g_string_append_c (out, (char)c);
        }
    }
  g_string_append_c (out, '"');
}

void
dl_json_append_string (GString *out, const char *s)
{
  append_string (out, s, FALSE);
}

void
dl_json_append_string_ascii (GString *out, const char *utf8)
{
  g_return_if_fail (out != NULL && utf8 != NULL);
  g_autofree char *valid = g_utf8_validate (utf8, -1, NULL) ? NULL : g_utf8_make_valid (utf8, -1);
  append_string (out, valid ? valid : utf8, TRUE); /* not UTF-8 (a file name in another encoding): U+FFFD */
}

static void
indent (GString *out, gboolean pretty, int depth)
{
  if (!pretty)
    return;
  g_string_append_c (out, '\n');
  for (int i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

static void
write_node (GString *out, JsonNode *node, gboolean pretty, int depth)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      {
        GType t = json_node_get_value_type (node);
        if (t == G_TYPE_STRING)
          dl_json_append_string (out, json_node_get_string (node));
        else if (t == G_TYPE_BOOLEAN)
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
        else if (t == G_TYPE_DOUBLE)
          dl_json_append_double (out, json_node_get_double (node));
        else
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (node);
        guint n = json_array_get_length (a);
        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i)
              g_string_append_c (out, ',');
            indent (out, pretty, depth + 1);
            write_node (out, json_array_get_element (a, i), pretty, depth + 1);
          }
        if (n)
          indent (out, pretty, depth);
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObject *o = json_node_get_object (node);
        g_autoptr (GList) members = json_object_get_members (o);
        g_string_append_c (out, '{');
        for (GList *l = members; l; l = l->next)
          {
            if (l != members)
              g_string_append_c (out, ',');
            indent (out, pretty, depth + 1);
            dl_json_append_string (out, l->data);
            g_string_append (out, pretty ? ": " : ":");
            write_node (out, json_object_get_member (o, l->data), pretty, depth + 1);
          }
        if (members)
          indent (out, pretty, depth);
        g_string_append_c (out, '}');
        break;
      }
    }
}

char *
dl_json_write (JsonNode *node, gboolean pretty, gsize *length)
{
  g_return_val_if_fail (node != NULL, NULL);
  GString *out = g_string_new (NULL);
  write_node (out, node, pretty, 0);
  if (pretty)
    g_string_append_c (out, '\n');
  if (length)
    *length = out->len;
  return g_string_free (out, FALSE);
}

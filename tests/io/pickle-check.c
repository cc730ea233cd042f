/* pickle-check.c: see pickle-check.h. */
#include "pickle-check.h"

#include <string.h>

/* Walk `d`: every opcode must be one of the protocol-2 subset of
 * docs/formats.md, “Pickle subset” (LONG1 too when `long1`), every GLOBAL one
 * of the four a TI/hypernetwork file needs. */
void
pickle_assert_allowed (const guint8 *d, gsize n, gboolean long1)
{
  static const char *const globals[] = {
    "torch._utils\n_rebuild_tensor_v2",
    "torch\nFloatStorage",
    "torch\nHalfStorage",
    "collections\nOrderedDict",
  };
  gsize pos = 0;
  gboolean stopped = FALSE;
  while (pos < n && !stopped)
    {
      guint8 op = d[pos++];
      gsize arg = 0;
      switch (op)
        {
        case '}':
        case ']':
        case ')':
        case '(':
        case 's':
        case 'u':
        case 'e':
        case 't':
        case 0x85:
        case 0x86:
        case 0x87:
        case 'N':
        case 0x88:
        case 0x89:
        case 'R':
        case 'Q':
          break;
        case '.':
          stopped = TRUE;
          break;
        case 0x80: /* PROTO */
          g_assert_cmpint (d[pos], ==, 2);
          arg = 1;
          break;
        case 'K':
        case 'q':
        case 'h':
          arg = 1;
          break;
        case 'M':
          arg = 2;
          break;
        case 'J':
          arg = 4;
          break;
        case 'G':
          arg = 8;
          break;
        case 'X':
          g_assert_cmpuint (pos + 4, <=, n);
          arg = 4 + (d[pos] | d[pos + 1] << 8 | (gsize)d[pos + 2] << 16 | (gsize)d[pos + 3] << 24);
          break;
        case 0x8a:
          if (!long1)
            g_error ("LONG1 at byte %" G_GSIZE_FORMAT, pos - 1);
          arg = 1 + d[pos];
          break;
        case 'c':
          {
            const guint8 *nl1 = memchr (d + pos, '\n', n - pos);
            g_assert_nonnull (nl1);
            const guint8 *nl2 = memchr (nl1 + 1, '\n', n - (nl1 + 1 - d));
            g_assert_nonnull (nl2);
            g_autofree char *g = g_strndup ((const char *)d + pos, nl2 - (d + pos));
            gboolean ok = FALSE;
            for (guint i = 0; i < G_N_ELEMENTS (globals); i++)
              ok |= strcmp (g, globals[i]) == 0;
            if (!ok)
              g_error ("global “%s” is not allowed", g);
            arg = nl2 + 1 - (d + pos);
            break;
          }
        default:
          g_error ("opcode 0x%02x at byte %" G_GSIZE_FORMAT " is not among the allowed ones", op, pos - 1);
        }
      pos += arg;
      g_assert_cmpuint (pos, <=, n);
    }
  g_assert_true (stopped);
  g_assert_cmpuint (pos, ==, n);
}

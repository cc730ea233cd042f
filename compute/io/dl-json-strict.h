/* dl-json-strict.h: an RFC 8259 grammar check run before json-glib sees a buffer.
 *
 * json-glib 1.6 is lenient in ways that matter for untrusted files: it accepts
 * single-quoted strings, comments and hex numbers, silently wraps integers that do
 * not fit in 64 bits, truncates strings at an escaped NUL, keeps only the last of
 * two members with the same name and recurses without a depth limit.  This check
 * rejects all of that (except duplicates, which need the parsed names; see
 * dl_json_parse_strict) so that what json-glib then builds is exactly what the
 * text says. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* TRUE when `text` (len bytes, valid UTF-8 or not) is one JSON value surrounded
 * by optional JSON whitespace, nested at most `max_depth` deep, with every
 * integer literal inside the int64 range and no \u0000 escape.  On failure sets
 * *problem to a message naming the byte offset (free it). */
gboolean dl_json_check_strict (const char *text, gsize len, guint max_depth, char **problem);

/* dl_json_check_strict, then json-glib, then a check for duplicate member names
 * in any object.  Returns the parser (its root is the document) or NULL with
 * *problem set. */
JsonParser *dl_json_parse_strict (const char *text, gsize len, guint max_depth, char **problem);

G_END_DECLS

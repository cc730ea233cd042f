/* dl-json-write.h: JSON text from a json-glib tree, numbers written so that they
 * read back exactly and are valid JSON.  (json-glib 1.6's generator appends
 * ".0" to every double printed without a decimal point, exponents included:
 * 1e-05 comes out as "1e-05.0", which no parser accepts — learning rates are
 * such numbers.) */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* `pretty`: two-space indentation, one member per line. */
char *dl_json_write (JsonNode *node, gboolean pretty, gsize *length);

/* A double as JSON: the shortest text that reads back to it ("0.0001", "1e-05",
 * "2.0", Python's repr); JSON has no NaN or infinity: those become null. */
void dl_json_append_double (GString *out, double v);

/* A UTF-8 string as a quoted JSON string: " \ and the control characters (DEL included) escaped,
 * the rest as it is.  The same text is a TOML basic string (the two share these escapes). */
void dl_json_append_string (GString *out, const char *s);
/* The same in ASCII: every character past 0x7e as \uXXXX, as Python's
 * json.dumps writes strings (ensure_ascii); bytes that are not UTF-8 become
 * U+FFFD. */
void dl_json_append_string_ascii (GString *out, const char *utf8);

G_END_DECLS

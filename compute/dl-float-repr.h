/* dl-float-repr.h: doubles as the shortest text that reads back exactly,
 * spelled as Python's repr() spells them ("0.0001", "1e-05", "1.0") — the form
 * kohya's metadata uses, valid JSON for finite values, and what settings files
 * show a person. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Python's repr() of a float: the shortest digits that read back to `v`, in
 * positional form for 1e-4 <= |v| < 1e16 ("0.0001", "1.0", "1000000000000000.0")
 * and exponent form otherwise ("1e-05", "1.5e+16"); "nan", "inf", "-inf", "-0.0".
 * Independent of the C locale. */
char *dl_python_float_repr (double v);

G_END_DECLS

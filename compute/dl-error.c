#include "dl-error.h"

G_DEFINE_QUARK (dl - error - quark, dl_error)

/* pickle-check.h (tests only): the opcodes and globals of a pickle the engine's
 * torch writer made, checked against what A1111's safe unpickler and PyTorch's
 * weights_only loader accept (AUTOMATIC1111 modules/safe.py RestrictedUnpickler;
 * PyTorch torch/_weights_only_unpickler.py). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Walk the pickle `d`: every opcode must be one of the protocol-2 subset of
 * docs/formats.md, “Pickle subset” (LONG1 too when `long1`), every GLOBAL one
 * of the four a TI/hypernetwork file needs;
 * it must end with STOP.  Fails the test otherwise. */
void pickle_assert_allowed (const guint8 *d, gsize n, gboolean long1);

G_END_DECLS

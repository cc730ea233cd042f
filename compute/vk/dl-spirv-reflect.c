/* A minimal SPIR-V walker: storage-buffer bindings (and whether they are readonly),
 * push-constant block size and specialization-constant count.  Enough to build
 * descriptor-set and pipeline layouts without hand-written per-shader tables. */
#include "dl-spirv-reflect.h"

#include "dl-error.h"

#include <string.h>

enum
{
  OP_TYPE_INT = 21,
  OP_TYPE_FLOAT = 22,
  OP_TYPE_VECTOR = 23,
  OP_TYPE_MATRIX = 24,
  OP_TYPE_ARRAY = 28,
  OP_TYPE_STRUCT = 30,
  OP_TYPE_POINTER = 32,
  OP_CONSTANT = 43,
  OP_VARIABLE = 59,
  OP_DECORATE = 71,
  OP_MEMBER_DECORATE = 72,
};
enum
{
  DEC_SPEC_ID = 1,
  DEC_BLOCK = 2,
  DEC_BUFFER_BLOCK = 3,
  DEC_ARRAY_STRIDE = 6,
  DEC_NON_WRITABLE = 24,
  DEC_BINDING = 33,
  DEC_DESCRIPTOR_SET = 34,
  DEC_OFFSET = 35,
};
enum
{
  SC_UNIFORM = 2,
  SC_PUSH_CONSTANT = 9,
  SC_STORAGE_BUFFER = 12,
};

typedef struct
{
  uint32_t op;
  uint32_t a, b, c; /* operands, meaning depends on op */
  guint32 binding;
  guint32 set;
  gboolean has_binding;
  gboolean non_writable;
  gboolean buffer_block;
  guint32 array_stride;
  guint32 const_value;
  GArray *members;       /* struct: member type ids */
  GArray *member_offset; /* struct: member Offset decorations */
  GArray *member_nw;     /* struct: member NonWritable */
} Id;

static guint
type_size (Id *ids, uint32_t bound, uint32_t t, int depth)
{
  if (t >= bound || depth > 16)
    return 0;
  Id *d = &ids[t];
  switch (d->op)
    {
    case OP_TYPE_INT:
    case OP_TYPE_FLOAT:
      return d->a / 8;
    case OP_TYPE_VECTOR:
    case OP_TYPE_MATRIX:
      return type_size (ids, bound, d->a, depth + 1) * d->b;
    case OP_TYPE_ARRAY:
      {
        guint n = d->b < bound ? ids[d->b].const_value : 0;
        guint stride = d->array_stride ? d->array_stride : type_size (ids, bound, d->a, depth + 1);
        return n * stride;
      }
    case OP_TYPE_STRUCT:
      {
        guint size = 0;
        for (guint m = 0; m < d->members->len; m++)
          {
            guint off = m < d->member_offset->len ? g_array_index (d->member_offset, guint32, m) : 0;
            guint s = type_size (ids, bound, g_array_index (d->members, uint32_t, m), depth + 1);
            size = MAX (size, off + s);
          }
        return size;
      }
    default:
      return 0;
    }
}

static void
set_member (GArray **arr, guint m, guint32 v)
{
  if (!*arr)
    *arr = g_array_new (FALSE, TRUE, sizeof (guint32));
  if ((*arr)->len <= m)
    g_array_set_size (*arr, m + 1);
  g_array_index (*arr, guint32, m) = v;
}

gboolean
dl_spirv_reflect (const uint32_t *code, gsize n_words, DlSpirvInterface *out, GError **error)
{
  if (n_words < 5 || code[0] != 0x07230203u)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "not SPIR-V (bad magic)");
      return FALSE;
    }
  uint32_t bound = code[3];
  if (bound == 0 || bound > 1u << 22)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "SPIR-V id bound %u out of range", bound);
      return FALSE;
    }
  Id *ids = g_new0 (Id, bound);
  memset (out, 0, sizeof *out);
  gboolean ok = TRUE;

  for (gsize i = 5; i < n_words;)
    {
      uint32_t wc = code[i] >> 16, op = code[i] & 0xffffu;
      if (wc == 0 || i + wc > n_words)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "truncated SPIR-V instruction at word %zu", i);
          ok = FALSE;
          break;
        }
      const uint32_t *w = code + i;
      switch (op)
        {
        case OP_TYPE_INT:
        case OP_TYPE_FLOAT:
          if (wc >= 3 && w[1] < bound)
            ids[w[1]] = (Id){ .op = op, .a = w[2] };
          break;
        case OP_TYPE_VECTOR:
        case OP_TYPE_MATRIX:
        case OP_TYPE_ARRAY:
          if (wc >= 4 && w[1] < bound)
            {
              ids[w[1]].op = op;
              ids[w[1]].a = w[2];
              ids[w[1]].b = w[3];
            }
          break;
        case OP_TYPE_STRUCT:
          if (wc >= 2 && w[1] < bound)
            {
              ids[w[1]].op = op;
              ids[w[1]].members = g_array_new (FALSE, TRUE, sizeof (uint32_t));
              g_array_append_vals (ids[w[1]].members, w + 2, wc - 2);
              if (!ids[w[1]].member_offset)
                ids[w[1]].member_offset = g_array_new (FALSE, TRUE, sizeof (guint32));
            }
          break;
        case OP_TYPE_POINTER:
          if (wc >= 4 && w[1] < bound)
            {
              ids[w[1]].op = op;
              ids[w[1]].a = w[2]; /* storage class */
              ids[w[1]].b = w[3]; /* pointee */
            }
          break;
        case OP_CONSTANT:
          if (wc >= 4 && w[2] < bound)
            ids[w[2]].const_value = w[3];
          break;
        case OP_VARIABLE:
          if (wc >= 4 && w[2] < bound)
            {
              ids[w[2]].op = op;
              ids[w[2]].a = w[1]; /* pointer type */
              ids[w[2]].b = w[3]; /* storage class */
            }
          break;
        case OP_DECORATE:
          if (wc >= 3 && w[1] < bound)
            {
              Id *d = &ids[w[1]];
              switch (w[2])
                {
                case DEC_BINDING:
                  d->binding = wc >= 4 ? w[3] : 0;
                  d->has_binding = TRUE;
                  break;
                case DEC_DESCRIPTOR_SET:
                  d->set = wc >= 4 ? w[3] : 0;
                  break;
                case DEC_NON_WRITABLE:
                  d->non_writable = TRUE;
                  break;
                case DEC_BUFFER_BLOCK:
                  d->buffer_block = TRUE;
                  break;
                case DEC_ARRAY_STRIDE:
                  d->array_stride = wc >= 4 ? w[3] : 0;
                  break;
                case DEC_SPEC_ID:
                  if (wc >= 4)
                    out->n_spec_constants = MAX (out->n_spec_constants, w[3] + 1);
                  break;
                default:
                  break;
                }
            }
          break;
        case OP_MEMBER_DECORATE:
          if (wc >= 4 && w[1] < bound)
            {
              if (w[3] == DEC_OFFSET && wc >= 5)
                set_member (&ids[w[1]].member_offset, w[2], w[4]);
              else if (w[3] == DEC_NON_WRITABLE)
                set_member (&ids[w[1]].member_nw, w[2], 1);
            }
          break;
        default:
          break;
        }
      i += wc;
    }

  for (uint32_t v = 0; ok && v < bound; v++)
    {
      Id *d = &ids[v];
      if (d->op != OP_VARIABLE || d->a >= bound)
        continue;
      uint32_t pointee = ids[d->a].b;
      if (pointee >= bound)
        continue;
      Id *st = &ids[pointee];
      if (d->b == SC_PUSH_CONSTANT)
        out->push_constant_size = type_size (ids, bound, pointee, 0);
      else if ((d->b == SC_STORAGE_BUFFER || (d->b == SC_UNIFORM && st->buffer_block)) && d->has_binding)
        {
          if (d->set != 0 || d->binding >= DL_SPIRV_MAX_BINDINGS)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "storage buffer at set %u binding %u: only set 0, bindings < %u are supported", d->set,
                           d->binding, DL_SPIRV_MAX_BINDINGS);
              ok = FALSE;
              break;
            }
          out->n_bindings = MAX (out->n_bindings, d->binding + 1);
          /* readonly appears on the variable or on every member of its block */
          gboolean nw = d->non_writable;
          if (!nw && st->op == OP_TYPE_STRUCT && st->member_nw && st->members && st->member_nw->len >= st->members->len)
            {
              nw = TRUE;
              for (guint m = 0; m < st->members->len; m++)
                nw = nw && g_array_index (st->member_nw, guint32, m);
            }
          out->writable[d->binding] = !nw;
        }
    }

  for (uint32_t v = 0; v < bound; v++)
    {
      if (ids[v].members)
        g_array_unref (ids[v].members);
      if (ids[v].member_offset)
        g_array_unref (ids[v].member_offset);
      if (ids[v].member_nw)
        g_array_unref (ids[v].member_nw);
    }
  g_free (ids);
  return ok;
}

/* The restricted unpickler: a data-only reading of the pickle opcode stream
 * (opcode meanings: CPython Lib/pickletools.py). */
#include "dl-pickle.h"

#include <string.h>

#include "dl-error.h"

/* what an allowed global becomes */
typedef enum
{
  G_ORDERED_DICT,
  G_REBUILD_TENSOR,
  G_REBUILD_PARAMETER,
  G_STORAGE_CLASS,
  G_INERT,
} GlobalKind;

static const struct
{
  const char *module;
  const char *name;
  GlobalKind kind;
  DlStDType dtype;
} allowed_globals[] = {
  { "collections", "OrderedDict", G_ORDERED_DICT, 0 },
  { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, 0 },
  { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0 },
  { "torch", "FloatStorage", G_STORAGE_CLASS, DL_ST_F32 },
  { "torch", "HalfStorage", G_STORAGE_CLASS, DL_ST_F16 },
  { "torch", "BFloat16Storage", G_STORAGE_CLASS, DL_ST_BF16 },
  { "torch", "DoubleStorage", G_STORAGE_CLASS, DL_ST_F64 },
  { "torch", "LongStorage", G_STORAGE_CLASS, DL_ST_I64 },
  { "torch", "IntStorage", G_STORAGE_CLASS, DL_ST_I32 },
  { "torch", "ShortStorage", G_STORAGE_CLASS, DL_ST_I16 },
  { "torch", "CharStorage", G_STORAGE_CLASS, DL_ST_I8 },
  { "torch", "ByteStorage", G_STORAGE_CLASS, DL_ST_U8 },
  { "torch", "BoolStorage", G_STORAGE_CLASS, DL_ST_BOOL },
  /* inert: seen in SD-era .ckpt files outside the state dict (the set A1111's
   * safe unpickler allows); they become placeholders and are never called */
  { "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint", G_INERT, 0 },
  { "numpy.core.multiarray", "scalar", G_INERT, 0 },
  { "numpy", "dtype", G_INERT, 0 },
  { "_codecs", "encode", G_INERT, 0 },
  { "builtins", "set", G_INERT, 0 },
  { "__builtin__", "set", G_INERT, 0 },
  /* the original Textual Inversion repo's string_to_param (an nn.Module built by
   * NEWOBJ + BUILD; its tensors are reached through the state's "_parameters") */
  { "torch.nn.modules.container", "ParameterDict", G_INERT, 0 },
};

typedef struct
{
  DlPickleValue v;
  int global_index; /* for GLOBAL values */
} Value;

struct _DlPickle
{
  GPtrArray *arena; /* Value*, owns everything */
  DlPickleValue *root;
};

typedef struct
{
  DlPickle *pk;
  const guint8 *data;
  gsize len;
  gsize pos;
  gsize op_pos;
  guint8 op;
  const char *path;
  GPtrArray *stack; /* Value* */
  GArray *marks;    /* guint stack lengths */
  GHashTable *memo; /* index -> Value* */
  GError **error;
} Unpickler;

static void
value_free (Value *v)
{
  switch (v->v.type)
    {
    case DL_PK_STRING:
    case DL_PK_BYTES:
      g_free (v->v.str.data);
      break;
    case DL_PK_TUPLE:
    case DL_PK_LIST:
    case DL_PK_DICT:
    case DL_PK_SET:
      g_ptr_array_unref (v->v.items);
      break;
    case DL_PK_GLOBAL:
    case DL_PK_OPAQUE:
      g_free (v->v.global.module);
      g_free (v->v.global.name);
      break;
    case DL_PK_STORAGE:
      g_free (v->v.storage.key);
      g_free (v->v.storage.location);
      break;
    default:
      break;
    }
  g_free (v);
}

void
dl_pickle_free (DlPickle *pk)
{
  if (!pk)
    return;
  g_ptr_array_unref (pk->arena);
  g_free (pk);
}

DlPickleValue *
dl_pickle_get_root (DlPickle *pk)
{
  g_return_val_if_fail (pk != NULL, NULL);
  return pk->root;
}

DlPickleValue *
dl_pickle_dict_get (const DlPickleValue *dict, const char *key)
{
  g_return_val_if_fail (dict != NULL && key != NULL, NULL);
  if (dict->type != DL_PK_DICT)
    return NULL;
  for (guint i = dict->items->len / 2; i-- > 0;)
    {
      const DlPickleValue *k = dict->items->pdata[2 * i];
      if (k->type == DL_PK_STRING && k->str.len == strlen (key) && strcmp (k->str.data, key) == 0)
        return dict->items->pdata[2 * i + 1];
    }
  return NULL;
}

DlPickleValue *
dl_pickle_dict_get_int (const DlPickleValue *dict, gint64 key)
{
  g_return_val_if_fail (dict != NULL, NULL);
  if (dict->type != DL_PK_DICT)
    return NULL;
  for (guint i = dict->items->len / 2; i-- > 0;)
    {
      const DlPickleValue *k = dict->items->pdata[2 * i];
      if (k->type == DL_PK_INT && k->i == key)
        return dict->items->pdata[2 * i + 1];
    }
  return NULL;
}

DlPickleValue *
dl_pickle_get_attr (const DlPickleValue *object, const char *name)
{
  g_return_val_if_fail (object != NULL && name != NULL, NULL);
  if (object->type != DL_PK_OPAQUE || !object->global.state)
    return NULL;
  const DlPickleValue *state = object->global.state;
  /* BUILD's (dict, slot dict) form */
  if (state->type == DL_PK_TUPLE && state->items->len == 2)
    state = state->items->pdata[0];
  return dl_pickle_dict_get (state, name);
}

const char *
dl_pickle_type_name (DlPickleType type)
{
  static const char *const names[] = {
    [DL_PK_NONE] = "None",     [DL_PK_BOOL] = "bool",     [DL_PK_INT] = "int",      [DL_PK_FLOAT] = "float",
    [DL_PK_STRING] = "str",    [DL_PK_BYTES] = "bytes",   [DL_PK_TUPLE] = "tuple",  [DL_PK_LIST] = "list",
    [DL_PK_DICT] = "dict",     [DL_PK_SET] = "set",       [DL_PK_GLOBAL] = "class", [DL_PK_STORAGE] = "storage",
    [DL_PK_TENSOR] = "tensor", [DL_PK_OPAQUE] = "object",
  };
  return (guint)type < G_N_ELEMENTS (names) && names[type] ? names[type] : "unknown";
}

static const char *
op_name (guint8 op)
{
  switch (op)
    {
    case 'c':
      return "GLOBAL";
    case 'R':
      return "REDUCE";
    case 'b':
      return "BUILD";
    case 'i':
      return "INST";
    case 'o':
      return "OBJ";
    case 0x81:
      return "NEWOBJ";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x93:
      return "STACK_GLOBAL";
    case 'P':
      return "PERSID";
    case 'Q':
      return "BINPERSID";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 'I':
      return "INT";
    case 'L':
      return "LONG";
    case 'F':
      return "FLOAT";
    case 'S':
      return "STRING";
    case 'V':
      return "UNICODE";
    case 'p':
      return "PUT";
    case 'g':
      return "GET";
    case 0x8b:
      return "LONG4";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
    default:
      return NULL;
    }
}

static gboolean G_GNUC_PRINTF (2, 3) fail (Unpickler *u, const char *fmt, ...)
{
  if (*u->error)
    return FALSE;
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  const char *name = op_name (u->op);
  g_set_error (u->error, DL_ERROR, DL_ERROR_INVALID_FILE,
               "“%s”: refused pickle at byte %" G_GSIZE_FORMAT " (opcode 0x%02x%s%s): %s", u->path, u->op_pos, u->op,
               name ? " " : "", name ? name : "", msg);
  return FALSE;
}

static Value *
new_value (Unpickler *u, DlPickleType type)
{
  Value *v = g_new0 (Value, 1);
  v->v.type = type;
  v->global_index = -1;
  if (type == DL_PK_TUPLE || type == DL_PK_LIST || type == DL_PK_DICT || type == DL_PK_SET)
    v->v.items = g_ptr_array_new ();
  g_ptr_array_add (u->pk->arena, v);
  return v;
}

static gboolean
need (Unpickler *u, gsize n)
{
  if (u->len - u->pos < n)
    return fail (u, "the data ends inside an opcode (truncated pickle)");
  return TRUE;
}

static gboolean
push (Unpickler *u, Value *v)
{
  g_ptr_array_add (u->stack, v);
  return TRUE;
}

static Value *
pop (Unpickler *u)
{
  guint floor = u->marks->len ? g_array_index (u->marks, guint, u->marks->len - 1) : 0;
  if (u->stack->len <= floor)
    {
      fail (u, "the stack is empty");
      return NULL;
    }
  return g_ptr_array_steal_index (u->stack, u->stack->len - 1);
}

static Value *
top (Unpickler *u)
{
  guint floor = u->marks->len ? g_array_index (u->marks, guint, u->marks->len - 1) : 0;
  if (u->stack->len <= floor)
    {
      fail (u, "the stack is empty");
      return NULL;
    }
  return u->stack->pdata[u->stack->len - 1];
}

/* The items above the last mark, removed from the stack (and the mark). */
static GPtrArray *
pop_mark (Unpickler *u)
{
  if (u->marks->len == 0)
    {
      fail (u, "no MARK to pop to");
      return NULL;
    }
  guint m = g_array_index (u->marks, guint, u->marks->len - 1);
  g_array_set_size (u->marks, u->marks->len - 1);
  GPtrArray *items = g_ptr_array_new ();
  for (guint i = m; i < u->stack->len; i++)
    g_ptr_array_add (items, u->stack->pdata[i]);
  g_ptr_array_set_size (u->stack, m);
  return items;
}

/* UTF-8, allowing NUL characters (Python strings may hold them) */
static gboolean
utf8_with_nul (const char *s, gsize n)
{
  while (n > 0)
    {
      const char *end;
      if (g_utf8_validate_len (s, n, &end))
        return TRUE;
      if (*end != '\0')
        return FALSE;
      n -= (gsize)(end - s) + 1;
      s = end + 1;
    }
  return TRUE;
}

static gboolean
push_string (Unpickler *u, gsize n, gboolean unicode)
{
  if (!need (u, n))
    return FALSE;
  const char *s = (const char *)u->data + u->pos;
  if (unicode && !utf8_with_nul (s, n))
    return fail (u, "a string is not valid UTF-8");
  Value *v = new_value (u, unicode ? DL_PK_STRING : DL_PK_BYTES);
  v->v.str.data = g_malloc (n + 1);
  memcpy (v->v.str.data, s, n);
  v->v.str.data[n] = '\0';
  v->v.str.len = n;
  u->pos += n;
  return push (u, v);
}

static gboolean
push_int (Unpickler *u, gint64 i)
{
  Value *v = new_value (u, DL_PK_INT);
  v->v.i = i;
  return push (u, v);
}

static guint64
le (const guint8 *p, int n)
{
  guint64 v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static gboolean
make_global (Unpickler *u, const char *module, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (allowed_globals); i++)
    if (strcmp (allowed_globals[i].module, module) == 0 && strcmp (allowed_globals[i].name, name) == 0)
      {
        Value *v = new_value (u, DL_PK_GLOBAL);
        v->v.global.module = g_strdup (module);
        v->v.global.name = g_strdup (name);
        v->global_index = (int)i;
        return push (u, v);
      }
  return fail (u, "global “%s.%s” is not allowed (only the types of a state dict are)", module, name);
}

static gboolean
op_global (Unpickler *u)
{
  /* "module\nname\n" */
  const char *start = (const char *)u->data + u->pos;
  gsize left = u->len - u->pos;
  const char *nl1 = memchr (start, '\n', MIN (left, 512));
  const char *nl2 = nl1 ? memchr (nl1 + 1, '\n', MIN (left - (gsize)(nl1 + 1 - start), 512)) : NULL;
  if (!nl2)
    return fail (u, "a GLOBAL's module and name are not two lines");
  g_autofree char *module = g_strndup (start, nl1 - start);
  g_autofree char *name = g_strndup (nl1 + 1, nl2 - nl1 - 1);
  if (strlen (module) != (gsize)(nl1 - start) || strlen (name) != (gsize)(nl2 - nl1 - 1) ||
      !g_utf8_validate (module, -1, NULL) || !g_utf8_validate (name, -1, NULL))
    return fail (u, "a GLOBAL's name is not text");
  u->pos += nl2 + 1 - start;
  return make_global (u, module, name);
}

static gboolean
int_of (const Value *v, gint64 *out)
{
  if (v->v.type == DL_PK_INT)
    *out = v->v.i;
  else if (v->v.type == DL_PK_BOOL)
    *out = v->v.b;
  else
    return FALSE;
  return TRUE;
}

/* size or stride: a tuple of ints */
static gboolean
int_tuple (Unpickler *u, const Value *t, gint64 *out, int *n, const char *what)
{
  if (t->v.type != DL_PK_TUPLE)
    return fail (u, "_rebuild_tensor_v2: the %s is not a tuple", what);
  if (t->v.items->len > DL_ST_MAX_DIMS)
    return fail (u, "_rebuild_tensor_v2: a tensor with %u dimensions (at most %d)", t->v.items->len, DL_ST_MAX_DIMS);
  *n = (int)t->v.items->len;
  for (int i = 0; i < *n; i++)
    if (!int_of (t->v.items->pdata[i], &out[i]))
      return fail (u, "_rebuild_tensor_v2: the %s holds a non-integer", what);
  return TRUE;
}

static gboolean
call (Unpickler *u, Value *fn, Value *args)
{
  if (fn->v.type != DL_PK_GLOBAL)
    return fail (u, "calling something that is not an allowed global");
  if (args->v.type != DL_PK_TUPLE)
    return fail (u, "the arguments of %s.%s are not a tuple", fn->v.global.module, fn->v.global.name);
  GPtrArray *a = args->v.items;
  switch (allowed_globals[fn->global_index].kind)
    {
    case G_ORDERED_DICT:
      {
        Value *d = new_value (u, DL_PK_DICT);
        if (a->len == 1 &&
            (((Value *)a->pdata[0])->v.type == DL_PK_LIST || ((Value *)a->pdata[0])->v.type == DL_PK_TUPLE))
          {
            GPtrArray *pairs = ((Value *)a->pdata[0])->v.items;
            for (guint i = 0; i < pairs->len; i++)
              {
                Value *p = pairs->pdata[i];
                if ((p->v.type != DL_PK_TUPLE && p->v.type != DL_PK_LIST) || p->v.items->len != 2)
                  return fail (u, "OrderedDict(...) with an item that is not a pair");
                g_ptr_array_add (d->v.items, p->v.items->pdata[0]);
                g_ptr_array_add (d->v.items, p->v.items->pdata[1]);
              }
          }
        else if (a->len != 0)
          return fail (u, "OrderedDict called with %u arguments", a->len);
        return push (u, d);
      }
    case G_REBUILD_TENSOR:
      {
        if (a->len < 6 || a->len > 7)
          return fail (u, "_rebuild_tensor_v2 called with %u arguments (6 or 7 expected)", a->len);
        Value *storage = a->pdata[0];
        if (storage->v.type != DL_PK_STORAGE)
          return fail (u, "_rebuild_tensor_v2: the first argument is not a storage");
        Value *t = new_value (u, DL_PK_TENSOR);
        t->v.tensor.storage = &storage->v;
        int nstride;
        if (!int_of (a->pdata[1], &t->v.tensor.offset) || t->v.tensor.offset < 0)
          return fail (u, "_rebuild_tensor_v2: the storage offset is not a non-negative integer");
        if (!int_tuple (u, a->pdata[2], t->v.tensor.shape, &t->v.tensor.ndim, "size") ||
            !int_tuple (u, a->pdata[3], t->v.tensor.stride, &nstride, "stride"))
          return FALSE;
        if (nstride != t->v.tensor.ndim)
          return fail (u, "_rebuild_tensor_v2: size and stride differ in length");
        return push (u, t);
      }
    case G_REBUILD_PARAMETER:
      if (a->len < 1 || ((Value *)a->pdata[0])->v.type != DL_PK_TENSOR)
        return fail (u, "_rebuild_parameter without a tensor");
      return push (u, a->pdata[0]);
    case G_STORAGE_CLASS:
      return fail (u, "calling %s.%s", fn->v.global.module, fn->v.global.name);
    case G_INERT:
    default:
      {
        Value *o = new_value (u, DL_PK_OPAQUE);
        o->v.global.module = g_strdup (fn->v.global.module);
        o->v.global.name = g_strdup (fn->v.global.name);
        return push (u, o);
      }
    }
}

static gboolean
persistent_load (Unpickler *u, Value *pid)
{
  /* ("storage", torch.<T>Storage, key, location, numel) */
  GPtrArray *a = pid->v.type == DL_PK_TUPLE ? pid->v.items : NULL;
  if (!a || a->len != 5 || ((Value *)a->pdata[0])->v.type != DL_PK_STRING ||
      strcmp (((Value *)a->pdata[0])->v.str.data, "storage") != 0)
    return fail (u, "a persistent id that is not a (\"storage\", type, key, location, numel) tuple");
  Value *cls = a->pdata[1], *key = a->pdata[2], *loc = a->pdata[3];
  gint64 numel;
  if (cls->v.type != DL_PK_GLOBAL || allowed_globals[cls->global_index].kind != G_STORAGE_CLASS)
    return fail (u, "a storage whose type is not a torch.*Storage class");
  if (key->v.type != DL_PK_STRING || loc->v.type != DL_PK_STRING || !int_of (a->pdata[4], &numel) || numel < 0)
    return fail (u, "a storage reference with a bad key, location or size");
  Value *s = new_value (u, DL_PK_STORAGE);
  s->v.storage.dtype = allowed_globals[cls->global_index].dtype;
  s->v.storage.key = g_strdup (key->v.str.data);
  s->v.storage.location = g_strdup (loc->v.str.data);
  s->v.storage.numel = numel;
  return push (u, s);
}

/* Keys are appended in order; a repeated key is left for the reader to judge
 * (dl_pickle_dict_get returns the last, as a dict would hold). */
static gboolean
set_items (Unpickler *u, Value *dict, GPtrArray *items)
{
  if (dict->v.type != DL_PK_DICT)
    return fail (u, "SETITEM(S) on something that is not a dict");
  if (items->len % 2 != 0)
    return fail (u, "SETITEMS with an odd number of items");
  for (guint i = 0; i < items->len; i++)
    g_ptr_array_add (dict->v.items, items->pdata[i]);
  return TRUE;
}

static gboolean
memo_put (Unpickler *u, guint64 idx)
{
  Value *v = top (u);
  if (!v)
    return FALSE;
  g_hash_table_insert (u->memo, GSIZE_TO_POINTER ((gsize)idx + 1), v);
  return TRUE;
}

static gboolean
memo_get (Unpickler *u, guint64 idx)
{
  Value *v = g_hash_table_lookup (u->memo, GSIZE_TO_POINTER ((gsize)idx + 1));
  if (!v)
    return fail (u, "memo entry %" G_GUINT64_FORMAT " was never stored", idx);
  return push (u, v);
}

static gboolean
step (Unpickler *u, gboolean *stop)
{
  u->op_pos = u->pos;
  u->op = u->data[u->pos++];
  switch (u->op)
    {
    case 0x80: /* PROTO */
      if (!need (u, 1))
        return FALSE;
      if (u->data[u->pos] > 5)
        return fail (u, "pickle protocol %u", u->data[u->pos]);
      u->pos++;
      return TRUE;
    case 0x95: /* FRAME: a length prefix, nothing to do */
      if (!need (u, 8))
        return FALSE;
      u->pos += 8;
      return TRUE;
    case '.': /* STOP */
      *stop = TRUE;
      return TRUE;
    case '(': /* MARK */
      g_array_append_val (u->marks, u->stack->len);
      return TRUE;
    case '0': /* POP */
      return pop (u) != NULL;
    case '1': /* POP_MARK */
      {
        GPtrArray *items = pop_mark (u);
        if (items)
          g_ptr_array_unref (items);
        return items != NULL;
      }
    case '2': /* DUP */
      {
        Value *v = top (u);
        return v && push (u, v);
      }
    case 'N':
      return push (u, new_value (u, DL_PK_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
      {
        Value *v = new_value (u, DL_PK_BOOL);
        v->v.b = u->op == 0x88;
        return push (u, v);
      }
    case 'K': /* BININT1 */
      if (!need (u, 1))
        return FALSE;
      return push_int (u, u->data[u->pos++]);
    case 'M': /* BININT2 */
      if (!need (u, 2))
        return FALSE;
      u->pos += 2;
      return push_int (u, (gint64)le (u->data + u->pos - 2, 2));
    case 'J': /* BININT */
      if (!need (u, 4))
        return FALSE;
      u->pos += 4;
      return push_int (u, (gint32)(guint32)le (u->data + u->pos - 4, 4));
    case 0x8a: /* LONG1: n little-endian two's complement bytes */
      {
        if (!need (u, 1))
          return FALSE;
        guint n = u->data[u->pos++];
        if (n > 8)
          return fail (u, "an integer of %u bytes (at most 8 supported)", n);
        if (!need (u, n))
          return FALSE;
        guint64 v = le (u->data + u->pos, (int)n);
        if (n > 0 && n < 8 && (u->data[u->pos + n - 1] & 0x80))
          v |= ~(guint64)0 << (8 * n);
        u->pos += n;
        return push_int (u, (gint64)v);
      }
    case 'G': /* BINFLOAT, big-endian */
      {
        if (!need (u, 8))
          return FALSE;
        guint64 bits = 0;
        for (int i = 0; i < 8; i++)
          bits = bits << 8 | u->data[u->pos + i];
        u->pos += 8;
        Value *v = new_value (u, DL_PK_FLOAT);
        memcpy (&v->v.f, &bits, 8);
        return push (u, v);
      }
    case 'X':  /* BINUNICODE */
    case 0x8c: /* SHORT_BINUNICODE */
    case 0x8d: /* BINUNICODE8 */
    case 'B':  /* BINBYTES */
    case 'C':  /* SHORT_BINBYTES */
    case 0x8e: /* BINBYTES8 */
    case 'T':  /* BINSTRING (Python 2 str) */
    case 'U':  /* SHORT_BINSTRING */
      {
        int w = (u->op == 0x8c || u->op == 'C' || u->op == 'U') ? 1 : (u->op == 0x8d || u->op == 0x8e) ? 8 : 4;
        if (!need (u, w))
          return FALSE;
        guint64 n = le (u->data + u->pos, w);
        if (u->op == 'T' && n > G_MAXINT32)
          return fail (u, "a negative string length");
        u->pos += w;
        if (n > u->len - u->pos)
          return fail (u, "a string of %" G_GUINT64_FORMAT " bytes runs past the end (truncated pickle)", n);
        return push_string (u, n, u->op == 'X' || u->op == 0x8c || u->op == 0x8d || u->op == 'T' || u->op == 'U');
      }
    case ')': /* EMPTY_TUPLE */
      return push (u, new_value (u, DL_PK_TUPLE));
    case ']': /* EMPTY_LIST */
      return push (u, new_value (u, DL_PK_LIST));
    case '}': /* EMPTY_DICT */
      return push (u, new_value (u, DL_PK_DICT));
    case 0x8f: /* EMPTY_SET */
      return push (u, new_value (u, DL_PK_SET));
    case 0x85: /* TUPLE1..3 */
    case 0x86:
    case 0x87:
      {
        guint n = u->op - 0x84;
        Value *vals[3];
        for (guint i = 0; i < n; i++)
          if (!(vals[n - 1 - i] = pop (u)))
            return FALSE;
        Value *t = new_value (u, DL_PK_TUPLE);
        for (guint i = 0; i < n; i++)
          g_ptr_array_add (t->v.items, vals[i]);
        return push (u, t);
      }
    case 't':  /* TUPLE */
    case 'l':  /* LIST */
    case 'd':  /* DICT */
    case 0x91: /* FROZENSET */
      {
        g_autoptr (GPtrArray) items = pop_mark (u);
        if (!items)
          return FALSE;
        Value *v = new_value (u, u->op == 't'   ? DL_PK_TUPLE
                                 : u->op == 'l' ? DL_PK_LIST
                                 : u->op == 'd' ? DL_PK_DICT
                                                : DL_PK_SET);
        if (u->op == 'd')
          return set_items (u, v, items) && push (u, v);
        for (guint i = 0; i < items->len; i++)
          g_ptr_array_add (v->v.items, items->pdata[i]);
        return push (u, v);
      }
    case 'a': /* APPEND */
      {
        Value *x = pop (u), *list = x ? top (u) : NULL;
        if (!list)
          return FALSE;
        if (list->v.type != DL_PK_LIST)
          return fail (u, "APPEND to something that is not a list");
        g_ptr_array_add (list->v.items, x);
        return TRUE;
      }
    case 'e':  /* APPENDS */
    case 0x90: /* ADDITEMS */
      {
        g_autoptr (GPtrArray) items = pop_mark (u);
        Value *c = items ? top (u) : NULL;
        if (!c)
          return FALSE;
        if (c->v.type != (u->op == 'e' ? DL_PK_LIST : DL_PK_SET))
          return fail (u, "%s to something that is not a %s", u->op == 'e' ? "APPENDS" : "ADDITEMS",
                       u->op == 'e' ? "list" : "set");
        for (guint i = 0; i < items->len; i++)
          g_ptr_array_add (c->v.items, items->pdata[i]);
        return TRUE;
      }
    case 's': /* SETITEM */
      {
        Value *v = pop (u), *k = v ? pop (u) : NULL, *d = k ? top (u) : NULL;
        if (!d)
          return FALSE;
        g_autoptr (GPtrArray) items = g_ptr_array_new ();
        g_ptr_array_add (items, k);
        g_ptr_array_add (items, v);
        return set_items (u, d, items);
      }
    case 'u': /* SETITEMS */
      {
        g_autoptr (GPtrArray) items = pop_mark (u);
        Value *d = items ? top (u) : NULL;
        return d && set_items (u, d, items);
      }
    case 'q': /* BINPUT */
    case 'h': /* BINGET */
      if (!need (u, 1))
        return FALSE;
      u->pos++;
      return u->op == 'q' ? memo_put (u, u->data[u->pos - 1]) : memo_get (u, u->data[u->pos - 1]);
    case 'r': /* LONG_BINPUT */
    case 'j': /* LONG_BINGET */
      if (!need (u, 4))
        return FALSE;
      u->pos += 4;
      return u->op == 'r' ? memo_put (u, le (u->data + u->pos - 4, 4)) : memo_get (u, le (u->data + u->pos - 4, 4));
    case 0x94: /* MEMOIZE */
      return memo_put (u, g_hash_table_size (u->memo));
    case 'c': /* GLOBAL */
      return op_global (u);
    case 0x93: /* STACK_GLOBAL */
      {
        Value *name = pop (u), *module = name ? pop (u) : NULL;
        if (!module)
          return FALSE;
        if (module->v.type != DL_PK_STRING || name->v.type != DL_PK_STRING)
          return fail (u, "STACK_GLOBAL without two strings");
        return make_global (u, module->v.str.data, name->v.str.data);
      }
    case 'R': /* REDUCE */
      {
        Value *args = pop (u), *fn = args ? pop (u) : NULL;
        return fn && call (u, fn, args);
      }
    case 0x81: /* NEWOBJ: only inert classes */
      {
        Value *args = pop (u), *cls = args ? pop (u) : NULL;
        if (!cls)
          return FALSE;
        if (cls->v.type != DL_PK_GLOBAL || allowed_globals[cls->global_index].kind != G_INERT)
          return fail (u, "NEWOBJ of something that is not an inert placeholder class");
        return call (u, cls, args);
      }
    case 'b': /* BUILD: a placeholder keeps its state (attributes); that of dicts and tensors is not needed */
      {
        Value *state = pop (u), *obj = state ? top (u) : NULL;
        if (!obj)
          return FALSE;
        if (obj->v.type != DL_PK_DICT && obj->v.type != DL_PK_TENSOR && obj->v.type != DL_PK_OPAQUE)
          return fail (u, "BUILD on something that is not a dict, tensor or placeholder");
        if (obj->v.type == DL_PK_OPAQUE)
          obj->v.global.state = &state->v;
        return TRUE;
      }
    case 'Q': /* BINPERSID */
      {
        Value *pid = pop (u);
        return pid && persistent_load (u, pid);
      }
    default:
      {
        const char *name = op_name (u->op);
        return fail (u, "%s is not allowed", name ? "this opcode" : "unknown opcode");
      }
    }
}

DlPickle *
dl_pickle_load (const guint8 *data, gsize len, const char *display_name, GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (DlPickle) pk = g_new0 (DlPickle, 1);
  pk->arena = g_ptr_array_new_with_free_func ((GDestroyNotify)value_free);
  Unpickler u = {
    .pk = pk,
    .data = data,
    .len = len,
    .path = display_name ? display_name : "(memory)",
    .stack = g_ptr_array_new (),
    .marks = g_array_new (FALSE, FALSE, sizeof (guint)),
    .memo = g_hash_table_new (g_direct_hash, g_direct_equal),
    .error = &local,
  };
  gboolean stop = FALSE, ok = TRUE;
  while (ok && !stop)
    {
      if (u.pos >= u.len)
        {
          u.op_pos = u.pos;
          ok = fail (&u, "the data ends before STOP (truncated pickle)");
          break;
        }
      ok = step (&u, &stop);
    }
  if (ok)
    {
      if (u.stack->len != 1 || u.marks->len != 0)
        ok = fail (&u, "STOP with %u values and %u marks left (one value expected)", u.stack->len, u.marks->len);
      else
        pk->root = &((Value *)u.stack->pdata[0])->v;
    }
  g_ptr_array_unref (u.stack);
  g_array_unref (u.marks);
  g_hash_table_unref (u.memo);
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  return g_steal_pointer (&pk);
}

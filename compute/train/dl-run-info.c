/* dl-run-info.c: see dl-run-info.h; the format is dl_trainer_write_run_json's. */
#include "dl-config.h"

#include "train/dl-run-info.h"

#include <math.h>

#include "dl-error.h"

static void
checkpoint_free (gpointer p)
{
  DlRunCheckpoint *c = p;
  g_free (c->file);
  g_free (c->state);
  g_free (c);
}

void
dl_run_info_free (DlRunInfo *info)
{
  if (!info)
    return;
  g_free (info->dir);
  g_clear_pointer (&info->settings, dl_train_settings_free);
  g_clear_pointer (&info->checkpoints, g_ptr_array_unref);
  g_clear_pointer (&info->validations, g_array_unref);
  g_clear_pointer (&info->losses, g_array_unref);
  g_free (info);
}

GArray *
dl_run_json_validations (JsonObject *run)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (DlTrainValidation));
  JsonNode *vn = json_object_get_member (run, "validation");
  JsonArray *vals = vn && JSON_NODE_HOLDS_ARRAY (vn) ? json_node_get_array (vn) : NULL;
  for (guint i = 0; vals && i < json_array_get_length (vals); i++)
    {
      JsonNode *n = json_array_get_element (vals, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      JsonObject *vo = json_node_get_object (n);
      DlTrainValidation v = { json_object_get_int_member_with_default (vo, "step", -1),
                              json_object_get_double_member_with_default (vo, "loss", NAN) };
      if (v.step >= 0 && isfinite (v.loss))
        g_array_append_val (out, v);
    }
  return out;
}

static double
val_at (const DlRunInfo *info, gint64 step)
{
  for (guint i = 0; i < info->validations->len; i++)
    {
      const DlTrainValidation *v = &g_array_index (info->validations, DlTrainValidation, i);
      if (v->step == step)
        return v->loss;
    }
  return NAN;
}

DlRunInfo *
dl_run_info_read (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autofree char *path = g_build_filename (dir, "run.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_file (parser, path, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: %s", path, local->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (!o || g_strcmp0 (json_object_get_string_member_with_default (o, "format", ""), "dreamloom-run") != 0 ||
      !json_object_has_member (o, "settings"))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: not a Dreamloom run description", path);
      return NULL;
    }
  g_autoptr (DlRunInfo) info = g_new0 (DlRunInfo, 1);
  info->dir = g_strdup (dir);
  info->settings = dl_train_settings_from_json (json_object_get_member (o, "settings"), error);
  if (!info->settings)
    {
      g_prefix_error (error, "“%s”: ", path);
      return NULL;
    }
  info->step = json_object_get_int_member_with_default (o, "step", 0);
  info->finished = json_object_get_boolean_member_with_default (o, "finished", FALSE);
  info->best_step = -1;
  info->best_val_loss = NAN;
  JsonNode *bs = json_object_get_member (o, "best_step");
  if (bs && JSON_NODE_HOLDS_VALUE (bs))
    info->best_step = json_node_get_int (bs);
  JsonNode *bv = json_object_get_member (o, "best_validation_loss");
  if (bv && JSON_NODE_HOLDS_VALUE (bv))
    info->best_val_loss = json_node_get_double (bv);

  info->validations = dl_run_json_validations (o);

  /* a damaged or unreadable loss log costs the curve, never the run */
  info->losses = dl_loss_log_read (dir, NULL);
  if (!info->losses)
    info->losses = dl_loss_log_new ();

  info->checkpoints = g_ptr_array_new_with_free_func (checkpoint_free);
  JsonNode *cn = json_object_get_member (o, "checkpoints");
  JsonArray *cks = cn && JSON_NODE_HOLDS_ARRAY (cn) ? json_node_get_array (cn) : NULL;
  for (guint i = 0; cks && i < json_array_get_length (cks); i++)
    {
      JsonNode *n = json_array_get_element (cks, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        continue;
      JsonObject *co = json_node_get_object (n);
      DlRunCheckpoint *c = g_new0 (DlRunCheckpoint, 1);
      c->step = json_object_get_int_member_with_default (co, "step", 0);
      c->file = g_strdup (json_object_get_string_member_with_default (co, "file", ""));
      c->state = g_strdup (json_object_get_string_member_with_default (co, "state", ""));
      c->best = json_object_get_boolean_member_with_default (co, "best", FALSE);
      c->val_loss = val_at (info, c->step);
      g_ptr_array_add (info->checkpoints, c);
    }
  return g_steal_pointer (&info);
}

gboolean
dl_run_info_can_continue (const DlRunInfo *info)
{
  g_return_val_if_fail (info != NULL, FALSE);
  return !info->finished && info->checkpoints->len > 0 && info->step < info->settings->steps;
}

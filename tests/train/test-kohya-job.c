/* test-kohya-job.c: a run written as a kohya sd-scripts job — train.sh run
 * with a fake `accelerate` that prints its arguments (so the quoting is what
 * sh makes of it), dataset.toml's keys, the copied images and their captions,
 * and the refusals: a hypernetwork, a non-empty target, a failure midway
 * (nothing left behind). */
#include "dl-test-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "train/dl-kohya-job.h"

typedef struct
{
  char *root; /* scratch folder, removed at the end */
  char *bin;  /* holds the fake accelerate */
} Fixture;

static void
fixture_init (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  f->root = g_dir_make_tmp ("kohya-job-XXXXXX", &error);
  g_assert_no_error (error);
  f->bin = g_build_filename (f->root, "bin", NULL);
  g_assert_cmpint (g_mkdir (f->bin, 0755), ==, 0);
  g_autofree char *acc = g_build_filename (f->bin, "accelerate", NULL);
  /* the working directory, then every argument on its own line */
  const char *script = "#!/bin/sh\npwd\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n";
  g_assert_true (g_file_set_contents (acc, script, -1, &error));
  g_assert_cmpint (g_chmod (acc, 0755), ==, 0);
}

static void
fixture_clear (Fixture *f)
{
  if (g_getenv ("DL_TEST_KEEP")) /* to look at the jobs */
    g_test_message ("kept %s", f->root);
  else
    dl_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->bin);
}

static char *
make_png (const char *dir, const char *name, guint32 rgba)
{
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 16, 16);
  gdk_pixbuf_fill (pb, rgba);
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (gdk_pixbuf_save (pb, path, "png", &error, NULL));
  g_assert_no_error (error);
  return path;
}

static char *
read_text (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  return text;
}

static gboolean
exists (const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* sh train.sh from another folder, the fake accelerate first on PATH: its lines (pwd, then "launch", ...) */
static char **
run_train_sh (Fixture *f, const char *job)
{
  g_autofree char *sh = g_build_filename (job, "train.sh", NULL);
  g_auto (GStrv) env = g_get_environ ();
  g_autofree char *path = g_strconcat (f->bin, ":/usr/bin:/bin", NULL);
  env = g_environ_setenv (env, "PATH", path, TRUE);
  env = g_environ_setenv (env, "SD_SCRIPTS", "/opt/sd scripts", TRUE);
  char *argv[] = { "/bin/sh", sh, NULL };
  g_autofree char *out = NULL, *err = NULL;
  int status = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_spawn_sync ("/", argv, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error));
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("train.sh stderr: %s", err);
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_no_error (error);
  gsize n = strlen (out);
  if (n && out[n - 1] == '\n')
    out[n - 1] = '\0';
  return g_strsplit (out, "\n", -1);
}

/* the value of "--flag=value", or NULL */
static const char *
flag_value (char **argv, const char *flag)
{
  gsize n = strlen (flag);
  const char *found = NULL;
  for (char **a = argv; *a; a++)
    if (strncmp (*a, flag, n) == 0 && (*a)[n] == '=')
      {
        g_assert_null (found); /* given once */
        found = *a + n + 1;
      }
  return found;
}

static gboolean
has_flag (char **argv, const char *flag)
{
  for (char **a = argv; *a; a++)
    if (g_str_equal (*a, flag) || (g_str_has_prefix (*a, flag) && (*a)[strlen (flag)] == '='))
      return TRUE;
  return FALSE;
}

/* the values after a list flag ("--optimizer_args a b c"), joined by '|' */
static char *
flag_list (char **argv, const char *flag)
{
  GString *s = g_string_new (NULL);
  for (char **a = argv; *a; a++)
    if (g_str_equal (*a, flag))
      for (char **v = a + 1; *v && !g_str_has_prefix (*v, "--"); v++)
        g_string_append_printf (s, "%s%s", s->len ? "|" : "", *v);
  return g_string_free (s, FALSE);
}

#define assert_flag(argv, flag, want) g_assert_cmpstr (flag_value ((argv), (flag)), ==, (want))

/* dataset.toml as "section/key" -> raw value text; array tables numbered ("datasets.subsets#1/image_dir") */
static GHashTable *
parse_toml (const char *job)
{
  g_autofree char *text = read_text (job, "dataset.toml");
  g_assert_nonnull (text);
  GHashTable *keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *section = g_strdup ("");
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      char *line = g_strstrip (*l);
      if (!*line || line[0] == '#')
        continue;
      if (g_str_has_prefix (line, "[["))
        {
          g_autofree char *name = g_strndup (line + 2, strlen (line) - 4);
          guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, name));
          g_hash_table_insert (counts, g_strdup (name), GUINT_TO_POINTER (n + 1));
          g_free (section);
          section = g_strdup_printf ("%s#%u", name, n);
        }
      else if (line[0] == '[')
        {
          g_free (section);
          section = g_strndup (line + 1, strlen (line) - 2);
        }
      else
        {
          char *eq = strstr (line, " = ");
          g_assert_nonnull (eq);
          g_autofree char *key = g_strndup (line, eq - line);
          g_hash_table_insert (keys, g_strdup_printf ("%s/%s", section, key), g_strdup (eq + 3));
        }
    }
  return keys;
}

#define assert_toml(keys, key, want) g_assert_cmpstr (g_hash_table_lookup ((keys), (key)), ==, (want))

/* A TOML basic string read back */
static char *
toml_unquote (const char *raw)
{
  g_assert_nonnull (raw);
  gsize n = strlen (raw);
  g_assert_true (n >= 2 && raw[0] == '"' && raw[n - 1] == '"');
  GString *s = g_string_new (NULL);
  for (gsize i = 1; i + 1 < n; i++)
    {
      if (raw[i] != '\\')
        {
          g_assert_true (raw[i] != '"');
          g_string_append_c (s, raw[i]);
          continue;
        }
      char c = raw[++i];
      g_assert_true (c == '"' || c == '\\' || c == 'n');
      g_string_append_c (s, c == 'n' ? '\n' : c);
    }
  return g_string_free (s, FALSE);
}

static void
assert_no_partial (const char *parent)
{
  g_autoptr (GDir) d = g_dir_open (parent, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)))
    g_assert_false (g_str_has_suffix (name, ".partial"));
}

static gboolean
same_bytes (const char *a, const char *b)
{
  g_autofree char *ta = NULL, *tb = NULL;
  gsize la = 0, lb = 0;
  return g_file_get_contents (a, &ta, &la, NULL) && g_file_get_contents (b, &tb, &lb, NULL) && la == lb &&
         memcmp (ta, tb, la) == 0;
}

static void
set (DlTrainSettings *s, const char *name, const char *value)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_train_settings_set (s, name, value, &error));
  g_assert_no_error (error);
}

/* ---- LoRA ---- */

static void
test_lora (void)
{
  Fixture f;
  fixture_init (&f);
  g_autofree char *dir1 = g_build_filename (f.root, "images", NULL);
  g_autofree char *dir2 = g_build_filename (f.root, "more", NULL);
  g_autofree char *img0 = make_png (dir1, "photo.png", 0xff0000ff);
  g_autofree char *img1 = make_png (dir2, "photo.png", 0x00ff00ff);
  g_autofree char *img2 = make_png (dir1, "Shot.PNG", 0x0000ffff);
  const char *paths[] = { img0, img1, img2, img0 }; /* the last one again: copied once */
  const char *captions[] = { "a \"quoted\" caption, it's", NULL, "", "a \"quoted\" caption, it's" };

  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_LORA);
  g_autofree char *model = g_build_filename (f.root, "my model's dir", "base.safetensors", NULL);
  g_autofree char *out = g_build_filename (f.root, "mylora.safetensors", NULL);
  set (s, "model", model);
  set (s, "out", out);
  set (s, "conv-rank", "8");
  set (s, "repeats", "3");
  set (s, "conv-alpha", "4");
  set (s, "buckets", NULL);
  set (s, "min-snr-gamma", "5");
  set (s, "flip", NULL);
  set (s, "lr-scheduler", "cosine");
  set (s, "lr-warmup", "98"); /* 98 / 1500 * 1500 is 97.99... in double */
  set (s, "optimizer", "adamw8bit");
  set (s, "shuffle-tags", NULL);
  set (s, "keep-tags", "1");
  set (s, "caption-dropout", "0.1");
  set (s, "fp16", NULL);
  set (s, "checkpointing", NULL);
  set (s, "noise-offset", "0.05");
  set (s, "clip-skip", "2");
  set (s, "grad-accum", "2");
  set (s, "sample-prompt", "a cat");
  set (s, "sample-prompt", "it's \"quoted\"");
  set (s, "sample-every", "100");
  set (s, "sample-first", NULL);
  set (s, "replay", "/tmp/r\necho INJECTED");

  g_autofree char *job = g_build_filename (f.root, "job dir", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_kohya_job_write (s, paths, captions, 4, job, &error));
  g_assert_no_error (error);
  assert_no_partial (f.root);

  /* the command line, as sh hands it to accelerate */
  g_auto (GStrv) argv = run_train_sh (&f, job);
  g_assert_cmpstr (argv[0], ==, job); /* train.sh ran from its folder */
  g_assert_cmpstr (argv[1], ==, "launch");
  g_assert_cmpstr (argv[2], ==, "--num_cpu_threads_per_process");
  g_assert_cmpstr (argv[3], ==, "1");
  g_assert_cmpstr (argv[4], ==, "/opt/sd scripts/train_network.py");
  for (char **a = argv; *a; a++)
    g_assert_cmpstr (*a, !=, "INJECTED"); /* a value in a comment stays in the comment */
  assert_flag (argv, "--pretrained_model_name_or_path", model);
  assert_flag (argv, "--dataset_config", "dataset.toml");
  assert_flag (argv, "--output_dir", "output");
  assert_flag (argv, "--output_name", "mylora");
  assert_flag (argv, "--save_model_as", "safetensors");
  assert_flag (argv, "--network_module", "networks.lora");
  assert_flag (argv, "--network_dim", "16");
  assert_flag (argv, "--network_alpha", "8.0");
  g_autofree char *net_args = flag_list (argv, "--network_args");
  g_assert_cmpstr (net_args, ==, "conv_dim=8|conv_alpha=4.0");
  assert_flag (argv, "--learning_rate", "0.0001");
  assert_flag (argv, "--unet_lr", "0.0001");
  assert_flag (argv, "--text_encoder_lr", "5e-05");
  g_assert_false (has_flag (argv, "--network_train_unet_only"));
  assert_flag (argv, "--max_train_steps", "1500");
  assert_flag (argv, "--seed", "42");
  assert_flag (argv, "--lr_scheduler", "cosine");
  /* warm-up as a fraction of the steps: int(fraction * 1500) == 98, as Python computes it */
  const char *warmup = flag_value (argv, "--lr_warmup_steps");
  g_assert_nonnull (warmup);
  double frac = g_ascii_strtod (warmup, NULL);
  g_assert_cmpfloat (frac, <, 1.0);
  g_assert_cmpint ((gint64)(frac * 1500.0), ==, 98);
  g_assert_false (has_flag (argv, "--lr_scheduler_num_cycles"));
  assert_flag (argv, "--optimizer_type", "AdamW8bit");
  g_autofree char *opt_args = flag_list (argv, "--optimizer_args");
  g_assert_cmpstr (opt_args, ==, "weight_decay=0.01|betas=0.9,0.999|eps=1e-08");
  assert_flag (argv, "--max_grad_norm", "1.0");
  assert_flag (argv, "--gradient_accumulation_steps", "2");
  assert_flag (argv, "--min_snr_gamma", "5.0");
  assert_flag (argv, "--noise_offset", "0.05");
  assert_flag (argv, "--clip_skip", "2");
  assert_flag (argv, "--mixed_precision", "fp16");
  assert_flag (argv, "--save_precision", "fp16");
  g_assert_true (has_flag (argv, "--gradient_checkpointing"));
  g_assert_true (has_flag (argv, "--sdpa"));
  g_assert_false (has_flag (argv, "--xformers"));
  assert_flag (argv, "--save_every_n_steps", "250");
  assert_flag (argv, "--save_last_n_steps", "500"); /* keep 3: the last three checkpoints */
  assert_flag (argv, "--sample_every_n_steps", "100");
  assert_flag (argv, "--sample_prompts", "sample_prompts.txt");
  assert_flag (argv, "--sample_sampler", "dpmsolver++");
  g_assert_true (has_flag (argv, "--sample_at_first"));

  /* the comment: settings without an equivalent, with their values */
  g_autofree char *sh = read_text (job, "train.sh");
  g_assert_true (g_str_has_prefix (sh, "#!/bin/sh\n"));
  g_assert_nonnull (strstr (sh, "\ncd \"$(dirname \"$0\")\""));
  g_assert_nonnull (strstr (sh, "#   --validate-every 50: "));
  g_assert_nonnull (strstr (sh, "#   --replay /tmp/r echo INJECTED: "));
  g_assert_nonnull (strstr (sh, "#   --keep 3: "));
  GStatBuf st;
  g_autofree char *sh_path = g_build_filename (job, "train.sh", NULL);
  g_assert_cmpint (g_stat (sh_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0755);

  /* dataset.toml */
  g_autoptr (GHashTable) toml = parse_toml (job);
  assert_toml (toml, "general/shuffle_caption", "true");
  assert_toml (toml, "general/keep_tokens", "1");
  assert_toml (toml, "general/caption_extension", "\".txt\"");
  assert_toml (toml, "general/flip_aug", "true");
  assert_toml (toml, "general/random_crop", "false");
  assert_toml (toml, "general/caption_dropout_rate", "0.1");
  assert_toml (toml, "datasets#0/resolution", "512");
  assert_toml (toml, "datasets#0/batch_size", "1");
  assert_toml (toml, "datasets#0/enable_bucket", "true");
  assert_toml (toml, "datasets#0/min_bucket_reso", "256");
  assert_toml (toml, "datasets#0/max_bucket_reso", "1024");
  assert_toml (toml, "datasets#0/bucket_reso_steps", "64");
  assert_toml (toml, "datasets.subsets#0/image_dir", "\"train\"");
  assert_toml (toml, "datasets.subsets#0/num_repeats", "3");
  g_assert_null (g_hash_table_lookup (toml, "datasets.subsets#1/image_dir"));
  g_assert_null (g_hash_table_lookup (toml, "datasets.subsets#0/enable_wildcard"));

  /* the images, renamed on a clash, with their captions */
  g_autofree char *train = g_build_filename (job, "train", NULL);
  g_autofree char *c0 = g_build_filename (train, "photo.png", NULL);
  g_autofree char *c1 = g_build_filename (train, "2-photo.png", NULL);
  g_autofree char *c2 = g_build_filename (train, "Shot.png", NULL);
  g_assert_true (same_bytes (c0, img0));
  g_assert_true (same_bytes (c1, img1));
  g_assert_true (same_bytes (c2, img2));
  g_autofree char *cap0 = read_text (train, "photo.txt");
  g_assert_cmpstr (cap0, ==, "a \"quoted\" caption, it's\n");
  g_assert_false (exists (train, "2-photo.txt"));
  g_assert_false (exists (train, "Shot.txt"));
  g_assert_false (exists (train, "3-photo.png"));

  g_autofree char *prompts = read_text (job, "sample_prompts.txt");
  g_assert_cmpstr (prompts, ==,
                   "a cat --w 512 --h 512 --s 20 --d 1234 --l 7.0\n"
                   "it's \"quoted\" --w 512 --h 512 --s 20 --d 1234 --l 7.0\n");
  g_autofree char *readme = read_text (job, "README.txt");
  g_assert_nonnull (strstr (readme, "accelerate config"));
  g_assert_nonnull (strstr (readme, "output/mylora.safetensors"));

  /* without the text encoder, buckets and samples */
  set (s, "no-text-encoder", NULL);
  set (s, "sample-every", "0");
  set (s, "lr-scheduler", "cosine_with_restarts");
  set (s, "lr-cycles", "3");
  g_autofree char *job2 = g_build_filename (f.root, "job2", NULL);
  g_assert_true (dl_kohya_job_write (s, paths, captions, 3, job2, &error));
  g_assert_no_error (error);
  g_auto (GStrv) argv2 = run_train_sh (&f, job2);
  g_assert_true (has_flag (argv2, "--network_train_unet_only"));
  g_assert_false (has_flag (argv2, "--text_encoder_lr"));
  g_assert_false (has_flag (argv2, "--sample_every_n_steps"));
  assert_flag (argv2, "--lr_scheduler", "cosine_with_restarts");
  assert_flag (argv2, "--lr_scheduler_num_cycles", "3");
  g_autofree char *sh2 = read_text (job2, "train.sh");
  g_assert_nonnull (strstr (sh2, "#   --sample-steps 20: "));

  fixture_clear (&f);
}

/* ---- Textual Inversion ---- */

static void
test_textual_inversion (void)
{
  Fixture f;
  fixture_init (&f);
  g_autofree char *dir = g_build_filename (f.root, "images", NULL);
  g_autofree char *img0 = make_png (dir, "a.png", 0x112233ff);
  g_autofree char *img1 = make_png (dir, "b.webp.png", 0x445566ff);
  const char *paths[] = { img0, img1 };
  const char *captions[] = { "red, shiny", NULL };

  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  g_autofree char *out = g_build_filename (f.root, "emb.pt", NULL);
  set (s, "model", "/models/sd15.safetensors");
  set (s, "out", out);
  set (s, "placeholder", "<my-tok>");
  set (s, "init-text", "it's \"x\"");
  set (s, "vectors", "2");
  set (s, "caption-dropout", "0.1");
  set (s, "shuffle-tags", NULL);

  g_autofree char *job = g_build_filename (f.root, "ti", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_kohya_job_write (s, paths, captions, 2, job, &error));
  g_assert_no_error (error);

  g_auto (GStrv) argv = run_train_sh (&f, job);
  g_assert_cmpstr (argv[4], ==, "/opt/sd scripts/train_textual_inversion.py");
  assert_flag (argv, "--token_string", "<my-tok>");
  assert_flag (argv, "--init_word", "it's \"x\"");
  assert_flag (argv, "--num_vectors_per_token", "2");
  assert_flag (argv, "--save_model_as", "pt");
  assert_flag (argv, "--output_name", "emb");
  assert_flag (argv, "--learning_rate", "0.005");
  assert_flag (argv, "--lr_scheduler", "constant");
  g_assert_false (has_flag (argv, "--lr_warmup_steps"));
  assert_flag (argv, "--max_grad_norm", "0.0");
  assert_flag (argv, "--optimizer_type", "AdamW");
  g_autofree char *opt_args = flag_list (argv, "--optimizer_args");
  g_assert_cmpstr (opt_args, ==, "weight_decay=0.0|betas=0.9,0.999|eps=1e-08");
  assert_flag (argv, "--mixed_precision", "no");
  assert_flag (argv, "--save_precision", "float");
  g_assert_false (has_flag (argv, "--unet_lr"));
  g_assert_false (has_flag (argv, "--network_module"));
  g_assert_false (has_flag (argv, "--use_object_template")); /* it would drop the captions */

  g_autofree char *sh = read_text (job, "train.sh");
  g_assert_nonnull (strstr (sh, "#   --caption-dropout 0.1: "));

  g_autoptr (GHashTable) toml = parse_toml (job);
  g_assert_null (g_hash_table_lookup (toml, "general/caption_dropout_rate")); /* not in TI's schema */
  assert_toml (toml, "general/shuffle_caption", "true");
  assert_toml (toml, "general/keep_tokens", "1"); /* the template part stays first */
  assert_toml (toml, "datasets.subsets#0/enable_wildcard", "true");

  /* every template, [name] and [filewords] filled in */
  g_autofree char *train = g_build_filename (job, "train", NULL);
  g_autofree char *t0 = read_text (train, "a.txt");
  g_autofree char *t1 = read_text (train, "b.webp.txt");
  g_assert_nonnull (t0);
  g_assert_nonnull (t1);
  g_auto (GStrv) l0 = g_strsplit (t0, "\n", -1);
  g_auto (GStrv) l1 = g_strsplit (t1, "\n", -1);
  g_assert_cmpuint (g_strv_length (l0), ==, 27 + 1); /* the TI paper's 27 object prompts, and the last "" */
  g_assert_cmpstr (l0[0], ==, "a photo of a <my-tok>, red, shiny");
  g_assert_cmpstr (l0[26], ==, "a photo of a small <my-tok>, red, shiny");
  g_assert_cmpstr (l1[0], ==, "a photo of a <my-tok>,");

  /* style, and a template file with braces (sd-scripts' wildcard syntax: doubled) */
  set (s, "template", "style");
  g_autofree char *job2 = g_build_filename (f.root, "ti-style", NULL);
  g_assert_true (dl_kohya_job_write (s, paths, captions, 2, job2, &error));
  g_assert_no_error (error);
  g_autofree char *train2 = g_build_filename (job2, "train", NULL);
  g_autofree char *s0 = read_text (train2, "a.txt");
  g_assert_true (g_str_has_prefix (s0, "a painting in the style of <my-tok>, red, shiny\n"));
  g_auto (GStrv) sl = g_strsplit (s0, "\n", -1);
  g_assert_cmpuint (g_strv_length (sl), ==, 19 + 1);

  g_autofree char *tmpl = g_build_filename (f.root, "templates.txt", NULL);
  g_assert_true (
    g_file_set_contents (tmpl, "a {weird} [name] by [filewords]\n\n  [filewords] of [name]  \n", -1, &error));
  set (s, "template", tmpl);
  g_autofree char *job3 = g_build_filename (f.root, "ti-file", NULL);
  g_assert_true (dl_kohya_job_write (s, paths, captions, 2, job3, &error));
  g_assert_no_error (error);
  g_autofree char *train3 = g_build_filename (job3, "train", NULL);
  g_autofree char *f0 = read_text (train3, "a.txt");
  g_assert_cmpstr (f0, ==, "a {{weird}} <my-tok> by red, shiny\nred, shiny of <my-tok>\n");
  g_autoptr (GHashTable) toml3 = parse_toml (job3);
  assert_toml (toml3, "general/keep_tokens", "0"); /* the user's template: as given */

  fixture_clear (&f);
}

/* ---- DreamBooth with prior preservation ---- */

static void
test_dreambooth (void)
{
  Fixture f;
  fixture_init (&f);
  g_autofree char *dir = g_build_filename (f.root, "images", NULL);
  g_autofree char *img0 = make_png (dir, "01.png", 0x808080ff);
  g_autofree char *img1 = make_png (dir, "02.jpg.png", 0x909090ff);
  const char *paths[] = { img0, img1 };
  g_autofree char *class_dir = g_build_filename (f.root, "class images", NULL);
  g_autofree char *k0 = make_png (class_dir, "c1.png", 0x101010ff);
  g_autofree char *k1 = make_png (class_dir, "c2.png", 0x202020ff);
  g_autofree char *not_image = g_build_filename (class_dir, "notes.txt", NULL);
  g_assert_true (g_file_set_contents (not_image, "x", -1, NULL));

  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_DREAMBOOTH);
  g_autofree char *out = g_build_filename (f.root, "db.safetensors", NULL);
  set (s, "model", "/models/sd15.safetensors");
  set (s, "out", out);
  set (s, "instance-prompt", "sks dog");
  set (s, "class-prompt", "a photo of \"dog\" \\ pet");
  set (s, "class-images", class_dir);
  set (s, "num-class-images", "5");
  set (s, "prior-weight", "0.5");
  set (s, "batch", "2");
  set (s, "fused-backward-pass", NULL);

  g_autofree char *job = g_build_filename (f.root, "db", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_kohya_job_write (s, paths, NULL, 2, job, &error));
  g_assert_no_error (error);

  g_auto (GStrv) argv = run_train_sh (&f, job);
  g_assert_cmpstr (argv[4], ==, "/opt/sd scripts/train_db.py");
  assert_flag (argv, "--prior_loss_weight", "0.5");
  assert_flag (argv, "--stop_text_encoder_training", "-1"); /* train_db.py trains the text encoder unless so */
  g_assert_false (has_flag (argv, "--learning_rate_te"));
  assert_flag (argv, "--learning_rate", "5e-06");
  assert_flag (argv, "--save_model_as", "safetensors");
  assert_flag (argv, "--output_name", "db");
  assert_flag (argv, "--max_train_steps", "800");
  assert_flag (argv, "--optimizer_type", "AdamW");
  g_autofree char *sh = read_text (job, "train.sh");
  g_assert_nonnull (strstr (sh, "#   --num-class-images 5: sd-scripts generates no class images: it trains with the 2 "
                                "in class/\n"));
  /* sd-scripts fuses the step with Adafactor only: the job takes AdamW's own */
  g_assert_false (has_flag (argv, "--fused_backward_pass"));
  g_assert_nonnull (strstr (sh, "#   --fused-backward-pass true: sd-scripts fuses the step into the backward with "
                                "Adafactor only"));

  g_autoptr (GHashTable) toml = parse_toml (job);
  assert_toml (toml, "datasets#0/batch_size", "4"); /* instance and class images share the batch */
  assert_toml (toml, "datasets.subsets#0/image_dir", "\"train\"");
  assert_toml (toml, "datasets.subsets#1/image_dir", "\"class\"");
  assert_toml (toml, "datasets.subsets#1/is_reg", "true");
  assert_toml (toml, "datasets.subsets#1/class_tokens", "\"a photo of \\\"dog\\\" \\\\ pet\"");
  g_autofree char *tokens = toml_unquote (g_hash_table_lookup (toml, "datasets.subsets#1/class_tokens"));
  g_assert_cmpstr (tokens, ==, "a photo of \"dog\" \\ pet");
  assert_toml (toml, "general/caption_dropout_rate", "0.0");

  g_autofree char *train = g_build_filename (job, "train", NULL);
  g_autofree char *cap = read_text (train, "01.txt");
  g_assert_cmpstr (cap, ==, "sks dog\n");
  g_autofree char *cap1 = read_text (train, "02.jpg.txt");
  g_assert_cmpstr (cap1, ==, "sks dog\n");
  g_autofree char *kdir = g_build_filename (job, "class", NULL);
  g_autofree char *kc0 = g_build_filename (kdir, "c1.png", NULL);
  g_autofree char *kc1 = g_build_filename (kdir, "c2.png", NULL);
  g_assert_true (same_bytes (kc0, k0));
  g_assert_true (same_bytes (kc1, k1));
  g_assert_false (exists (kdir, "notes.txt"));
  g_autofree char *readme = read_text (job, "README.txt");
  g_assert_nonnull (strstr (readme, "no regularization images"));

  /* with the text encoder, into a diffusers folder; a class folder that does not exist yet */
  set (s, "train-text-encoder", NULL);
  g_autofree char *out2 = g_build_filename (f.root, "db-folder/", NULL);
  set (s, "out", out2);
  g_autofree char *missing = g_build_filename (f.root, "no class yet", NULL);
  set (s, "class-images", missing);
  g_autofree char *job2 = g_build_filename (f.root, "db2", NULL);
  g_assert_true (dl_kohya_job_write (s, paths, NULL, 2, job2, &error));
  g_assert_no_error (error);
  g_auto (GStrv) argv2 = run_train_sh (&f, job2);
  assert_flag (argv2, "--learning_rate_te", "5e-06");
  g_assert_false (has_flag (argv2, "--stop_text_encoder_training"));
  assert_flag (argv2, "--save_model_as", "diffusers_safetensors");
  assert_flag (argv2, "--output_name", "db-folder");
  g_assert_true (exists (job2, "class"));

  fixture_clear (&f);
}

/* ---- refusals and failures ---- */

static void
test_refusals (void)
{
  Fixture f;
  fixture_init (&f);
  g_autofree char *dir = g_build_filename (f.root, "images", NULL);
  g_autofree char *good = make_png (dir, "good.png", 0x123456ff);
  g_autofree char *missing = g_build_filename (dir, "missing.png", NULL);
  g_autoptr (GError) error = NULL;

  /* a hypernetwork: nothing written */
  g_autoptr (DlTrainSettings) hn = dl_train_settings_new (DL_TRAIN_HYPERNETWORK);
  set (hn, "model", "/models/sd15.safetensors");
  const char *one[] = { good };
  g_autofree char *hn_job = g_build_filename (f.root, "hn", NULL);
  g_assert_false (dl_kohya_job_write (hn, one, NULL, 1, hn_job, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "hypernetwork"));
  g_assert_nonnull (strstr (error->message, "sd-scripts"));
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);
  g_assert_false (g_file_test (hn_job, G_FILE_TEST_EXISTS));

  /* a folder that is not empty: refused, left as it was */
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_LORA);
  set (s, "model", "/models/sd15.safetensors");
  g_autofree char *full = g_build_filename (f.root, "full", NULL);
  g_assert_cmpint (g_mkdir (full, 0755), ==, 0);
  g_autofree char *mine = g_build_filename (full, "mine.txt", NULL);
  g_assert_true (g_file_set_contents (mine, "keep me", -1, NULL));
  g_assert_false (dl_kohya_job_write (s, one, NULL, 1, full, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "is not empty: choose a new or empty folder"));
  g_clear_error (&error);
  g_autoptr (GDir) d = g_dir_open (full, 0, NULL);
  g_assert_cmpstr (g_dir_read_name (d), ==, "mine.txt");
  g_assert_null (g_dir_read_name (d));
  g_autofree char *kept = read_text (full, "mine.txt");
  g_assert_cmpstr (kept, ==, "keep me");
  assert_no_partial (f.root);

  /* a missing image after a good one: no folder, no partial one */
  const char *two[] = { good, missing };
  g_autofree char *job = g_build_filename (f.root, "job", NULL);
  g_assert_false (dl_kohya_job_write (s, two, NULL, 2, job, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "missing.png"));
  g_clear_error (&error);
  g_assert_false (g_file_test (job, G_FILE_TEST_EXISTS));
  assert_no_partial (f.root);

  /* an image type sd-scripts does not glob */
  g_autofree char *gif = g_build_filename (dir, "anim.gif", NULL);
  g_assert_true (g_file_set_contents (gif, "GIF89a", -1, NULL));
  const char *with_gif[] = { good, gif };
  g_assert_false (dl_kohya_job_write (s, with_gif, NULL, 2, job, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "anim.gif"));
  g_clear_error (&error);
  g_assert_false (g_file_test (job, G_FILE_TEST_EXISTS));

  /* cycles sd-scripts cannot take (a whole number there) */
  set (s, "lr-scheduler", "cosine_with_restarts");
  set (s, "lr-cycles", "1.5");
  g_assert_false (dl_kohya_job_write (s, one, NULL, 1, job, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "--lr-cycles"));
  g_clear_error (&error);
  g_assert_false (g_file_test (job, G_FILE_TEST_EXISTS));
  assert_no_partial (f.root);

  /* an existing empty folder is fine */
  set (s, "lr-cycles", "1");
  g_autofree char *empty = g_build_filename (f.root, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty, 0755), ==, 0);
  g_assert_true (dl_kohya_job_write (s, one, NULL, 1, empty, &error));
  g_assert_no_error (error);
  g_assert_true (exists (empty, "train.sh"));

  /* a partial folder left by a crash is replaced, not merged */
  g_autofree char *stale = g_build_filename (f.root, ".fresh.partial", NULL);
  g_assert_cmpint (g_mkdir (stale, 0755), ==, 0);
  g_autofree char *junk = g_build_filename (stale, "junk.txt", NULL);
  g_assert_true (g_file_set_contents (junk, "old", -1, NULL));
  g_autofree char *fresh = g_build_filename (f.root, "fresh", NULL);
  g_assert_true (dl_kohya_job_write (s, one, NULL, 1, fresh, &error));
  g_assert_no_error (error);
  g_assert_false (exists (fresh, "junk.txt"));
  assert_no_partial (f.root);

  fixture_clear (&f);
}

/* prompts that sample_prompts.txt cannot hold go to sample_prompts.json */
static void
test_prompts_json (void)
{
  Fixture f;
  fixture_init (&f);
  g_autofree char *dir = g_build_filename (f.root, "images", NULL);
  g_autofree char *good = make_png (dir, "good.png", 0x123456ff);
  const char *one[] = { good };
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_LORA);
  set (s, "model", "/models/sd15.safetensors");
  set (s, "sample-prompt", "a cat --w 64");
  set (s, "sample-prompt", "n ice dog");
  g_autofree char *job = g_build_filename (f.root, "job", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_kohya_job_write (s, one, NULL, 1, job, &error));
  g_assert_no_error (error);
  g_auto (GStrv) argv = run_train_sh (&f, job);
  assert_flag (argv, "--sample_prompts", "sample_prompts.json");
  g_assert_false (exists (job, "sample_prompts.txt"));
  g_autofree char *path = g_build_filename (job, "sample_prompts.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  JsonArray *a = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (a), ==, 2);
  JsonObject *p0 = json_array_get_object_element (a, 0);
  g_assert_cmpstr (json_object_get_string_member (p0, "prompt"), ==, "a cat --w 64");
  g_assert_cmpint (json_object_get_int_member (p0, "width"), ==, 512);
  g_assert_cmpint (json_object_get_int_member (p0, "sample_steps"), ==, 20);
  JsonObject *p1 = json_array_get_object_element (a, 1);
  g_assert_cmpstr (json_object_get_string_member (p1, "prompt"), ==, "n ice dog");
  fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/kohya-job/lora", test_lora);
  g_test_add_func ("/train/kohya-job/textual-inversion", test_textual_inversion);
  g_test_add_func ("/train/kohya-job/dreambooth", test_dreambooth);
  g_test_add_func ("/train/kohya-job/refusals", test_refusals);
  g_test_add_func ("/train/kohya-job/prompts-json", test_prompts_json);
  return g_test_run ();
}

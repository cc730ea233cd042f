/* `dreamloom tokenize [--vocab F] "prompt"`: the CLIP token ids of a prompt. */
#include "dl-cli.h"

#include <stdio.h>

#include "text/dl-clip-tokenizer.h"

int
dl_cli_tokenize (int argc, char **argv)
{
  g_autofree char *vocab = NULL, *model = NULL, *config = NULL;
  g_auto (GStrv) added = NULL;
  gboolean pad = FALSE, tokens = FALSE, verbose = FALSE;
  GOptionEntry entries[] = {
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab,
      "bpe_simple_vocab_16e6.txt.gz, a tokenizer/ folder or its vocab.json", "F" },
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Use this model's own tokenizer/ folder", "PATH" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "The config folder of a single-file model (its tokenizer/)",
      "DIR" },
    { "add-token", 0, 0, G_OPTION_ARG_STRING_ARRAY, &added, "A new token, e.g. a Textual Inversion placeholder",
      "TEXT" },
    { "pad", 0, 0, G_OPTION_ARG_NONE, &pad, "The 77 ids the SD 1.x text encoder gets (truncated, padded)", NULL },
    { "tokens", 0, 0, G_OPTION_ARG_NONE, &tokens, "One line per id, with its token", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Say which vocabulary was used (on stderr)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("PROMPT - print the CLIP token ids of a prompt");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autofree char *where = dl_clip_tokenizer_describe_search (NULL);
  g_autofree char *desc = g_strdup_printf ("Without --vocab or --model the vocabulary is looked for in:\n%s", where);
  g_option_context_set_description (ctx, desc);
  if (!dl_cli_parse (ctx, &argc, &argv, "tokenize"))
    return 2;
  if (argc != 2)
    {
      fprintf (stderr, "dreamloom tokenize: give the prompt as one argument (quote it)\n");
      return 2;
    }

  /* the model's tokenizer/: a diffusers folder's own, or its config folder's */
  g_autofree char *model_tok = NULL;
  if (model && g_file_test (model, G_FILE_TEST_IS_DIR))
    model_tok = g_build_filename (model, "tokenizer", NULL);
  else if (config)
    model_tok = g_build_filename (config, "tokenizer", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_find (model_tok, vocab, &error);
  if (!tok)
    return dl_cli_fail ("tokenize", error);
  if (verbose)
    fprintf (stderr, "dreamloom tokenize: vocabulary %s\n", dl_clip_tokenizer_get_source (tok));
  for (guint i = 0; added && added[i]; i++)
    if (dl_clip_tokenizer_add_token (tok, added[i], &error) < 0)
      return dl_cli_fail ("tokenize", error);

  g_autoptr (GArray) ids = NULL;
  if (pad)
    {
      ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), DL_CLIP_MAX_LENGTH);
      g_array_set_size (ids, DL_CLIP_MAX_LENGTH);
      if (!dl_clip_tokenizer_encode_77 (tok, argv[1], (gint32 *)ids->data, &error))
        return dl_cli_fail ("tokenize", error);
    }
  else if (!(ids = dl_clip_tokenizer_encode (tok, argv[1], &error)))
    return dl_cli_fail ("tokenize", error);

  for (guint i = 0; i < ids->len; i++)
    {
      gint32 id = g_array_index (ids, gint32, i);
      if (tokens)
        printf ("%d\t%s\n", id, dl_clip_tokenizer_get_token (tok, id));
      else
        printf ("%s%d", i ? " " : "", id);
    }
  if (!tokens)
    printf ("\n");
  return 0;
}

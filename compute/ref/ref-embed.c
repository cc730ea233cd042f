#include "ref-embed.h"

#include <math.h>
#include <string.h>

void
ref_embedding_forward_ex (float *out, const int32_t *ids, const float *table, int64_t id_base, const float *pos,
                          int64_t B, int64_t T, int64_t C, int64_t V, int64_t pos_offset, gboolean accumulate)
{
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      {
        int64_t row = (int64_t)ids[b * T + t] - id_base;
        gboolean in_table = row >= 0 && row < V;
        if (accumulate && !in_table && !pos)
          continue;
        for (int64_t c = 0; c < C; c++)
          {
            /* a sum of two floats in double, rounded once: the float sum */
            double v = in_table ? table[row * C + c] : 0.0;
            if (pos)
              v += pos[(t + pos_offset) * C + c];
            float *o = &out[(b * T + t) * C + c];
            *o = accumulate ? (float)((double)*o + (float)v) : (float)v;
          }
      }
}

void
ref_embedding_forward (float *out, const int32_t *ids, const float *table, const float *pos, int64_t B, int64_t T,
                       int64_t C, int64_t V, int64_t pos_offset)
{
  ref_embedding_forward_ex (out, ids, table, 0, pos, B, T, C, V, pos_offset, FALSE);
}

void
ref_embedding_backward_ex (float *dtable, int64_t id_base, float *dpos, const int32_t *ids, const float *dout,
                           int64_t B, int64_t T, int64_t C, int64_t V, int64_t pos_offset)
{
  if (dtable)
    {
      double *acc = g_new0 (double, MAX (V * C, 1));
      for (int64_t q = 0; q < B * T; q++)
        {
          int64_t row = (int64_t)ids[q] - id_base;
          if (row >= 0 && row < V)
            for (int64_t c = 0; c < C; c++)
              acc[row * C + c] += dout[q * C + c];
        }
      for (int64_t i = 0; i < V * C; i++)
        dtable[i] = (float)(dtable[i] + acc[i]);
      g_free (acc);
    }
  if (dpos)
    for (int64_t t = 0; t < T; t++)
      for (int64_t c = 0; c < C; c++)
        {
          double s = dpos[(t + pos_offset) * C + c];
          for (int64_t b = 0; b < B; b++)
            s += dout[(b * T + t) * C + c];
          dpos[(t + pos_offset) * C + c] = (float)s;
        }
}

void
ref_embedding_backward (float *dtable, float *dpos, const int32_t *ids, const float *dout, int64_t B, int64_t T,
                        int64_t C, int64_t V, int64_t pos_offset)
{
  ref_embedding_backward_ex (dtable, 0, dpos, ids, dout, B, T, C, V, pos_offset);
}

void
ref_timestep_embedding (float *out, const float *timesteps, int64_t B, int64_t dim, gboolean flip_sin_to_cos,
                        float freq_shift, float scale, double max_period)
{
  int64_t half = dim / 2;
  float nlp = (float)-log (max_period);
  float denom = (float)half - freq_shift;
  for (int64_t b = 0; b < B; b++)
    {
      float *row = out + b * dim;
      for (int64_t i = 0; i < half; i++)
        {
          float e = nlp * (float)i;
          float ed = e / denom;
          float f = expf (ed);
          float a0 = timesteps[b] * f;
          float a = scale * a0;
          float s = sinf (a), c = cosf (a);
          row[i] = flip_sin_to_cos ? c : s;
          row[half + i] = flip_sin_to_cos ? s : c;
        }
      if (dim % 2)
        row[dim - 1] = 0;
    }
}

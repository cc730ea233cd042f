#version 450
// Token (+ position) embedding lookup from a table whose row r holds id
// id_base + r:
//   out[b, t, c] (+)= table[ids[b, t] - id_base, c] (+ pos[t, c])
// Grid-stride over output elements, c fastest, so each table row is read
// contiguously.  An id outside the table reads nothing and contributes zeros: the
// shader cannot report errors, and must never read out of bounds.
//
// A table larger than one binding is looked up in several dispatches, one per
// range of rows (ids first_id .. first_id + rows - 1).  Each output element is
// written by exactly one of them, with the same arithmetic as a single dispatch:
// the one whose range holds its id, or, for an id outside the whole table
// (ids table_first .. table_first + table_rows - 1), the one with `strays` set.
#include "dl_dtype.glsl"
#include "dl_index.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer BufIds { int ids[]; };
layout(std430, binding = 1) readonly buffer BufTable { A_STORE table[]; };
layout(std430, binding = 2) readonly buffer BufPos { A_STORE pos[]; };
layout(std430, binding = 3) buffer BufOut { D_STORE o[]; };

layout(push_constant) uniform Push {
  uint n;       // B * T * C
  uint T, C;
  uint first_id, rows;           // the bound rows of the table
  uint table_first, table_rows;  // the whole table
  uint off_ids, off_table, off_pos, off_o;
  uint pos_offset; // position of token 0 (0 for CLIP)
  uint has_pos;
  uint strays;     // this dispatch writes the elements of ids outside the table
  uint accumulate; // out += instead of out =
} p;

void main()
{
  for (uint e = DL_GLOBAL_ID; e < p.n; e += DL_GLOBAL_STRIDE) {
    const uint c = e % p.C;
    const uint bt = e / p.C;
    const uint t = bt % p.T;
    const int id = ids[p.off_ids + bt];
    // unsigned differences: ids below the first wrap around to huge values
    const uint r = uint(id) - p.first_id;
    const bool here = id >= 0 && r < p.rows;
    if (!here) {
      const bool in_table = id >= 0 && uint(id) - p.table_first < p.table_rows;
      // a stray adds nothing when accumulating without positions: leave it be
      if (in_table || p.strays == 0u || (p.accumulate != 0u && p.has_pos == 0u))
        continue;
    }
    float v = here ? A_LOAD(table[p.off_table + r * p.C + c]) : 0.0;
    if (p.has_pos != 0u)
      v += A_LOAD(pos[p.off_pos + (t + p.pos_offset) * p.C + c]);
    if (p.accumulate != 0u)
      v = D_LOAD(o[p.off_o + e]) + v;
    o[p.off_o + e] = D_CONV(v);
  }
}

#version 450
// Backward of the lookup into the table, as a deterministic scatter-add:
//   dtable[id - first_id, c] += sum over positions q with ids[q] == id of dout[q, c]
// for the ids first_id .. first_id + rows - 1 that the bound rows hold (a table
// larger than one binding takes one dispatch per range of rows).
// One workgroup per position; only the first position holding an id does the
// work for that id, summing every later occurrence in position order.  So each
// table row has exactly one writer (no atomics, no races) and the sum order is
// fixed: the same bits on every run and device, however the rows are split.
// Ids outside the bound rows are skipped.
#include "dl_dtype.glsl"

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer BufIds { int ids[]; };
layout(std430, binding = 1) readonly buffer BufG { A_STORE g[]; };
layout(std430, binding = 2) buffer BufTable { float dtable[]; };

layout(push_constant) uniform Push {
  uint P; // positions (B * T)
  uint C;
  uint first_id, rows;
  uint off_ids, off_g, off_table;
} p;

shared uint first;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  for (uint q = gl_WorkGroupID.x; q < p.P; q += gl_NumWorkGroups.x) {
    const int id = ids[p.off_ids + q];
    // unsigned difference: ids below first_id wrap around to huge values
    const uint row = uint(id) - p.first_id;
    if (id < 0 || row >= p.rows)
      continue; // uniform across the workgroup
    if (tid == 0u)
      first = 1u;
    barrier();
    for (uint r = tid; r < q; r += gl_WorkGroupSize.x)
      if (ids[p.off_ids + r] == id)
        atomicAnd(first, 0u);
    barrier();
    const bool mine = first != 0u;
    barrier(); // `first` is reset by the next position
    if (!mine)
      continue;
    for (uint c = tid; c < p.C; c += gl_WorkGroupSize.x) {
      float s = 0.0;
      for (uint r = q; r < p.P; r++)
        if (ids[p.off_ids + r] == id)
          s += A_LOAD(g[p.off_g + r * p.C + c]);
      const uint idx = p.off_table + row * p.C + c;
      dtable[idx] += s;
    }
  }
}

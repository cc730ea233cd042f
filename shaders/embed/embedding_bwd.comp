#version 450
// Backward of the lookup into the table, as a deterministic scatter-add:
//   dtable[id, c] += sum over positions q with ids[q] == id of dout[q, c]
// One workgroup per position; only the first position holding an id does the
// work for that id, summing every later occurrence in position order.  So each
// table row has exactly one writer (no atomics, no races) and the sum order is
// fixed: the same bits on every run and device.  Ids outside [0, V) are skipped.
#include "dl_dtype.glsl"

layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer BufIds { int ids[]; };
layout(std430, binding = 1) readonly buffer BufG { A_STORE g[]; };
layout(std430, binding = 2) buffer BufTable { float dtable[]; };

layout(push_constant) uniform Push {
  uint P; // positions (B * T)
  uint C, V;
  uint off_ids, off_g, off_table;
} p;

shared uint first;

void main()
{
  const uint tid = gl_LocalInvocationID.x;
  for (uint q = gl_WorkGroupID.x; q < p.P; q += gl_NumWorkGroups.x) {
    const int id = ids[p.off_ids + q];
    if (id < 0 || uint(id) >= p.V)
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
      const uint idx = p.off_table + uint(id) * p.C + c;
      dtable[idx] += s;
    }
  }
}

// Shared by the normalisation shaders (workgroups of NORM_WG threads): merging
// per-thread statistics through shared memory by a fixed tree, so results do not
// depend on timing or on the subgroup size.
#ifndef NORM_COMMON_GLSL
#define NORM_COMMON_GLSL

#define NORM_WG 256u

shared uint sh_n[NORM_WG];
shared float sh_a[NORM_WG];
shared float sh_b[NORM_WG];

// Chan et al.'s parallel update: fold (nb, mb, qb) -- count, mean, sum of squared
// deviations -- into (n, m, q).  Unlike E[x^2] - E[x]^2 this keeps its accuracy
// when the mean is large against the spread.
void norm_merge(inout uint n, inout float m, inout float q, uint nb, float mb, float qb)
{
  if (nb == 0u)
    return;
  const uint nn = n + nb;
  const float d = mb - m;
  const float f = float(nb) / float(nn);
  m += d * f;
  q += qb + d * d * float(n) * f;
  n = nn;
}

// Welford's update with one value.
void norm_push(inout uint n, inout float m, inout float q, float v)
{
  n += 1u;
  const float d = v - m;
  m += d / float(n);
  q += d * (v - m);
}

// Every thread passes its (n, m, q) and gets the workgroup's.  Call from uniform
// control flow.
void norm_reduce_moments(uint tid, inout uint n, inout float m, inout float q)
{
  sh_n[tid] = n;
  sh_a[tid] = m;
  sh_b[tid] = q;
  barrier();
  for (uint w = NORM_WG / 2u; w > 0u; w >>= 1) {
    if (tid < w) {
      uint n0 = sh_n[tid];
      float m0 = sh_a[tid], q0 = sh_b[tid];
      norm_merge(n0, m0, q0, sh_n[tid + w], sh_a[tid + w], sh_b[tid + w]);
      sh_n[tid] = n0;
      sh_a[tid] = m0;
      sh_b[tid] = q0;
    }
    barrier();
  }
  n = sh_n[0];
  m = sh_a[0];
  q = sh_b[0];
  barrier();  // the arrays are reused
}

// Workgroup sums of two values; every thread gets them.
void norm_reduce_sum2(uint tid, inout float a, inout float b)
{
  sh_a[tid] = a;
  sh_b[tid] = b;
  barrier();
  for (uint w = NORM_WG / 2u; w > 0u; w >>= 1) {
    if (tid < w) {
      sh_a[tid] += sh_a[tid + w];
      sh_b[tid] += sh_b[tid + w];
    }
    barrier();
  }
  a = sh_a[0];
  b = sh_b[0];
  barrier();
}

#endif

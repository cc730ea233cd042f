// Helpers shared by the elementwise shaders.
#ifndef DL_INDEX_GLSL
#define DL_INDEX_GLSL

// Grid-stride loops let a dispatch stay under maxComputeWorkGroupCount[0] (65535 on
// many GPUs) whatever the tensor size: the host caps the group count, threads loop.
// Macros, not functions: gl_WorkGroupSize must be read after the shader's
// local_size layout, and glslang takes it as 1 in a function compiled before that.
#define DL_GLOBAL_ID gl_GlobalInvocationID.x
#define DL_GLOBAL_STRIDE (gl_NumWorkGroups.x * gl_WorkGroupSize.x)

// Row-major offset of linear index i in a 4-D shape ne (ne[0] outermost) with
// element strides st.
uint dl_offset4(uint i, uvec4 ne, uvec4 st)
{
  uint i3 = i % ne.w; i /= ne.w;
  uint i2 = i % ne.z; i /= ne.z;
  uint i1 = i % ne.y;
  uint i0 = i / ne.y;
  return i0 * st.x + i1 * st.y + i2 * st.z + i3 * st.w;
}

#endif

# The native addons. batchlab_cpu: the plan executor on a thread pool (always built where a
# C++ compiler is). batchlab_cuda: native/cuda/cuda.gypi, built when nvcc is found.
{
  'variables': {
    'with_cuda%': '<!(node scripts/detect-cuda.js)',
  },
  'includes': ['native/cuda/cuda.gypi'],
  'targets': [
    {
      'target_name': 'batchlab_cpu',
      'sources': ['native/addon.cc', 'native/plan.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-O2', '-O0'],
      # -ffp-contract=off: no fused multiply-add, so the float32 results are those of the ABI
      # (native/PLAN_ABI.md). x86-64-v2 (SSE4.2), not -march=native: the binary must run on
      # any recent x86-64 machine it is copied to.
      'cflags_cc': ['-std=c++17', '-fexceptions', '-O3', '-ffp-contract=off', '-fno-math-errno', '-fvisibility=hidden'],
      'conditions': [
        ['target_arch=="x64"', { 'cflags_cc': ['-march=x86-64-v2'] }],
      ],
    },
  ],
}

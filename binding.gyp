# The native addons (built by scripts/build-native.js, which never fails the install).
#   batchlab_cpu:  the plan executor of native/PLAN_ABI.md on a thread pool (native/*.cc).
#   batchlab_cuda: native/cuda/cuda.gypi (owned by the CUDA engine), built when with_cuda==1.
# with_cuda defaults to what scripts/detect-cuda.js finds (nvcc present, BATCHLAB_NO_CUDA
# unset); `node-gyp rebuild --with_cuda=0` overrides it. with_jpeg (scripts/detect-jpeg.js:
# jpeglib.h present, BATCHLAB_NO_JPEG unset) links libjpeg for native/decode.cc; without it the
# addon has no decodeJpeg and imageFolder decodes with sharp.
{
  'variables': {
    'with_cuda%': '<!(node scripts/detect-cuda.js)',
    'with_jpeg%': '<!(node scripts/detect-jpeg.js)',
  },
  'includes': ['native/cuda/cuda.gypi'],
  # x64 only: the warp pass on eight AVX2 lanes, which batchlab_cpu depends on there.
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          # The warp pass on eight AVX2 lanes (native/warp_avx2.cc), the only code built for more
          # than the x86-64-v2 baseline: a static library linked after batchlab_cpu's own objects,
          # which calls it only where the processor reports AVX2 (native/plan.cc, avx2Lanes).
          'target_name': 'batchlab_avx2',
          'type': 'static_library',
          'sources': ['native/warp_avx2.cc'],
          'cflags!': ['-fno-exceptions'],
          'cflags_cc!': ['-O2', '-O0', '-std=gnu++17', '-std=gnu++20'],
          'cflags_cc': ['-std=c++17', '-O3', '-ffp-contract=off', '-fno-math-errno', '-fvisibility=hidden', '-fPIC', '-march=x86-64-v2', '-mavx2'],
        },
      ],
    }],
  ],
  'targets': [
    {
      'target_name': 'batchlab_cpu',
      'sources': ['native/addon.cc', 'native/decode.cc', 'native/job_read.cc', 'native/plan.cc', 'native/plan_check.cc', 'native/pool.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'BATCHLAB_VERSION=<!(node -p "JSON.stringify(require(\'./package.json\').version)")',
      ],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-O2', '-O0', '-std=gnu++17', '-std=gnu++20'],
      # -ffp-contract=off: no fused multiply-add, one rounding per operation as the ABI's
      # arithmetic contract requires. -fno-math-errno: no errno side effects (this is not
      # -ffast-math, which would break that contract). No -march=native: the binary must run
      # on any x86-64-v2 (SSE4.2) machine it is copied to.
      'cflags_cc': ['-std=c++17', '-fexceptions', '-O3', '-ffp-contract=off', '-fno-math-errno', '-fvisibility=hidden', '-pthread'],
      'ldflags': ['-pthread'],
      'conditions': [
        ['target_arch=="x64"', {
          'cflags_cc': ['-march=x86-64-v2'],
          'defines': ['BATCHLAB_WITH_AVX2'],
          'dependencies': ['batchlab_avx2'],
        }],
        ['with_jpeg==1', { 'defines': ['BATCHLAB_WITH_JPEG'], 'libraries': ['-ljpeg'] }],
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
            'CLANG_CXX_LANGUAGE_STANDARD': 'c++17',
            'OTHER_CPLUSPLUSFLAGS': ['-O3', '-ffp-contract=off', '-fno-math-errno'],
          },
        }],
      ],
    },
  ],
}

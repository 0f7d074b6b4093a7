# The CUDA addon, build/Release/batchlab_cuda.node. Included by binding.gyp, which defines
# `with_cuda` (1 when nvcc was found). Paths below are relative to this file.
#
# .cu files go through nvcc by the rule below (IEEE float32 arithmetic: no FMA contraction,
# IEEE division and square root, no flush-to-zero; SASS for sm_80 and sm_90 plus compute_90
# PTX for newer GPUs). The CUDA runtime is linked statically, so the addon loads on machines
# without an NVIDIA driver; there cudaGetDeviceCount fails and available() says why.
{
  'conditions': [
    ['with_cuda==1', {
      'targets': [
        {
          'target_name': 'batchlab_cuda',
          'variables': {
            'bl_cuda_root%': '<!(node "<(module_root_dir)/native/cuda/find-cuda.js" root)',
            'bl_nvcc%': '<!(node "<(module_root_dir)/native/cuda/find-cuda.js" nvcc)',
          },
          'sources': ['addon.cc', 'common.cc', 'memory.cc', 'streams.cc', 'run_plan.cc', 'job.cc', 'plan_kernel.cu', '../job_read.cc', '../plan_check.cc'],
          'include_dirs': [
            "<!(node -p \"require('node-addon-api').include_dir\")",
            '<(bl_cuda_root)/include',
          ],
          'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
          'cflags!': ['-fno-exceptions'],
          'cflags_cc!': ['-fno-exceptions'],
          'cflags_cc': ['-fexceptions', '-O3', '-ffp-contract=off', '-fvisibility=hidden'],
          'rules': [
            {
              'rule_name': 'nvcc',
              'extension': 'cu',
              'inputs': ['plan_kernel.h', 'launch.h'],
              'outputs': ['<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o'],
              'action': [
                '<(bl_nvcc)', '-c', '<(RULE_INPUT_PATH)', '-o', '<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).cu.o',
                '-O3', '-std=c++17',
                '-fmad=false', '-prec-div=true', '-prec-sqrt=true', '-ftz=false',
                '-gencode', 'arch=compute_80,code=sm_80',
                '-gencode', 'arch=compute_90,code=sm_90',
                '-gencode', 'arch=compute_90,code=compute_90',
                '-Xcompiler', '-fPIC', '-Xcompiler', '-ffp-contract=off', '-Xcompiler', '-fvisibility=hidden',
              ],
              'message': 'NVCC <(RULE_INPUT_PATH)',
              'process_outputs_as_sources': 1,
            },
          ],
          'libraries': ['-L<(bl_cuda_root)/lib64', '-lcudart_static', '-ldl', '-lrt', '-lpthread'],
          'ldflags': ['-Wl,--exclude-libs,ALL'],
        },
      ],
    }],
  ],
}

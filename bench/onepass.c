/* The one-pass limit: uint8 HWC -> normalized float32 CHW for a shuffled epoch, nothing else.
 * Usage: onepass <n> <h> <w> <c> <batch> <threads>; prints images/second. Data is synthetic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

static int N, H, W, C, B, NT;
static uint8_t *src;
static float *out;
static int *order;
static int batch_start, batch_n;
static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, stdv[3] = {0.2470f, 0.2435f, 0.2616f};

static void *work(void *arg) {
  long t = (long)arg;
  for (int i = (int)t; i < batch_n; i += NT) {
    const uint8_t *s = src + (size_t)order[batch_start + i] * H * W * C;
    float *o = out + (size_t)i * C * H * W;
    for (int c = 0; c < C; c++) {
      const float m = mean[c % 3], sd = stdv[c % 3];
      for (int p = 0; p < H * W; p++) o[c * H * W + p] = ((float)s[p * C + c] / 255.0f - m) / sd;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 7) { fprintf(stderr, "usage: onepass n h w c batch threads\n"); return 2; }
  N = atoi(argv[1]); H = atoi(argv[2]); W = atoi(argv[3]); C = atoi(argv[4]); B = atoi(argv[5]); NT = atoi(argv[6]);
  src = malloc((size_t)N * H * W * C);
  out = malloc((size_t)B * C * H * W * sizeof(float));
  order = malloc(sizeof(int) * N);
  uint32_t x = 12345;
  for (size_t i = 0; i < (size_t)N * H * W * C; i++) { x = x * 1664525u + 1013904223u; src[i] = (uint8_t)(x >> 24); }
  for (int i = 0; i < N; i++) order[i] = i;
  for (int i = N - 1; i > 0; i--) { x = x * 1664525u + 1013904223u; int j = (int)(x % (uint32_t)(i + 1)); int tmp = order[i]; order[i] = order[j]; order[j] = tmp; }
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (batch_start = 0; batch_start < N; batch_start += B) {
      batch_n = N - batch_start < B ? N - batch_start : B;
      pthread_t th[64];
      for (long t = 0; t < NT; t++) pthread_create(&th[t], NULL, work, (void *)t);
      for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
    if (N / s > best) best = N / s;
  }
  volatile float sink = out[0];
  (void)sink;
  printf("%.0f\n", best);
  return 0;
}

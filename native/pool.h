// The process-wide worker pool of the CPU engine.
//
// std::thread workers (hardware_concurrency of them), started on the first job and never
// stopped. Jobs wait in a queue; a free worker takes the next chunk of samples from the jobs in
// round-robin order, skipping jobs that already have `cap` workers on them. So one job never
// uses more than its numThreads, and two jobs at once share the workers instead of starting
// more threads than there are cores.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "plan.h"

namespace batchlab {

// One job as the pool sees it. The pool never deletes a Task.
class Task {
 public:
  Task(int32_t count, int32_t cap) : count_(count), cap_(cap < 1 ? 1 : cap) {}
  virtual ~Task() = default;
  // Runs samples [begin, end) on a worker thread.
  virtual void run(int32_t begin, int32_t end, Scratch& scratch) = 0;
  // Called once, on the worker that finishes the last chunk, after which the pool no longer
  // touches the task (the callee may hand it to another thread that deletes it).
  virtual void finished() = 0;
  // When set, counts the worker threads currently inside run() or finished() for this task
  // (incremented under the pool's lock before run(), so that a waiter can tell when memory is
  // quiet and no result is being delivered).
  std::atomic<int32_t>* busy = nullptr;

 private:
  friend class Pool;
  const int32_t count_;
  const int32_t cap_;
  int32_t next_ = 0;    // next sample to hand out
  int32_t active_ = 0;  // workers inside run()
  int32_t done_ = 0;    // samples finished
};

class Pool {
 public:
  static Pool& instance();
  // Workers the pool has, or will have once started.
  static size_t size();
  // Starts the workers if they are not running yet. Throws std::runtime_error when not even
  // one thread could be started (then nothing is queued, and a later call tries again).
  void start();
  // Queues a task with count >= 1 (call start() first).
  void submit(Task* task);

 private:
  Pool() = default;
  void work();
  Task* pick(int32_t* begin, int32_t* end);  // under the lock
};

}  // namespace batchlab

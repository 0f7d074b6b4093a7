#include "pool.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace batchlab {
namespace {

// Never destroyed: detached workers wait on these until the process ends, so they must outlive
// static destructors.
struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Task*> tasks;  // tasks with samples not yet handed out, in arrival order
  size_t cursor = 0;         // round-robin position in `tasks`
  size_t running = 0;        // workers started
  size_t idle = 0;           // workers waiting on cv
};

State& state() {
  static State* s = new State();
  return *s;
}

}  // namespace

Pool& Pool::instance() {
  static Pool* pool = new Pool();
  return *pool;
}

size_t Pool::size() {
  static const size_t n = std::max(1u, std::thread::hardware_concurrency());
  return n;
}

void Pool::start() {
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  while (st.running < size()) {
    try {
      std::thread([this] { work(); }).detach();
    } catch (const std::exception& e) {
      if (st.running == 0) throw std::runtime_error(std::string("cannot start the engine's worker threads: ") + e.what());
      break;  // fewer workers than cores: the pool still works
    }
    ++st.running;
  }
}

// Buffers above this size are released when a worker goes idle, so that one huge batch does
// not pin its working memory in every thread for the life of the process.
constexpr size_t kKeepBytes = 32u << 20;

template <typename T>
void trimVector(std::vector<T>& v) {
  if (v.capacity() * sizeof(T) > kKeepBytes) std::vector<T>().swap(v);
}

void trim(Scratch& sc) {
  trimVector(sc.taps);
  trimVector(sc.weights);
  trimVector(sc.block);
  trimVector(sc.colIndex);
  trimVector(sc.fillCols);
  trimVector(sc.srcRow);
  trimVector(sc.rows);
  trimVector(sc.image);
  trimVector(sc.lutBlock);
}

void Pool::submit(Task* task) {
  State& st = state();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.tasks.push_back(task);
  }
  // Wake one worker; it wakes the next when the task has room for more (see work()). Waking
  // a thread costs a system call and, on virtual machines, an inter-processor interrupt:
  // this way the submitting (JavaScript) thread pays for one at most.
  st.cv.notify_one();
}

// The next chunk for this worker: from the first task at or after the cursor that has samples
// left and fewer than `cap` workers. Chunks shrink as a task nears its end (a quarter of what
// is left per worker, at most 16 samples), so that workers finish together and a second job
// gets its turn soon.
Task* Pool::pick(int32_t* begin, int32_t* end) {
  State& st = state();
  const size_t n = st.tasks.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (st.cursor + k) % n;
    Task* t = st.tasks[i];
    if (t->active_ >= t->cap_) continue;
    const int32_t left = t->count_ - t->next_;
    const int32_t chunk = std::max<int32_t>(1, std::min<int32_t>(16, left / (4 * t->cap_)));
    *begin = t->next_;
    *end = t->next_ + chunk;
    t->next_ = *end;
    t->active_ += 1;
    if (t->busy) t->busy->fetch_add(1);
    if (t->next_ == t->count_) {
      st.tasks.erase(st.tasks.begin() + (ptrdiff_t)i);
      st.cursor = st.tasks.empty() ? 0 : i % st.tasks.size();
    } else {
      st.cursor = (i + 1) % n;
    }
    return t;
  }
  return nullptr;
}

void Pool::work() {
  State& st = state();
  Scratch scratch;  // this worker's, reused across samples and jobs
  std::unique_lock<std::mutex> lock(st.mu);
  for (;;) {
    int32_t begin = 0, end = 0;
    Task* t = pick(&begin, &end);
    if (!t) {
      trim(scratch);
      ++st.idle;
      st.cv.wait(lock);
      --st.idle;
      continue;
    }
    // Chain the wake-up: another worker may join while this task has samples and room left.
    const bool more = st.idle > 0 && t->next_ < t->count_ && t->active_ < t->cap_;
    lock.unlock();
    if (more) st.cv.notify_one();
    t->run(begin, end, scratch);
    std::atomic<int32_t>* busy = t->busy;  // t may be gone after finished()
    lock.lock();
    t->active_ -= 1;
    t->done_ += end - begin;
    // No wake-up here: this worker picks again at once, round-robin over the queue, so a slot
    // it frees under a task's cap is taken by itself or goes to another task's turn.
    if (t->done_ == t->count_) {
      lock.unlock();
      // Still counted busy while it delivers the result: a waiter (an environment being torn
      // down) sees a quiet task only once nothing of it runs any more.
      t->finished();
      if (busy) busy->fetch_sub(1);
      lock.lock();
    } else if (busy) {
      busy->fetch_sub(1);
    }
  }
}

}  // namespace batchlab

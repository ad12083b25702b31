#include "cli/mpi_driver.h"
#include "cli/util.h"

#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"

#ifdef PCMSIM_WITH_MPI
#include <mpi.h>
#endif

namespace pcmsim::cli::mpi {
namespace {

// Started by a launcher (OpenMPI, MPICH/Hydra, PMIx, Slurm's srun with PMI)?
bool launched_by_mpirun() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(name)) return true;
  return false;
}

// Runs units in order on the calling thread (one process).
void run_serial(const std::vector<nets::WorkUnit>& units, const ComputeUnit& compute,
                const OnRecords& on_records) {
  for (const nets::WorkUnit& unit : units) on_records(compute(unit), 0);
}

#ifdef PCMSIM_WITH_MPI
constexpr int kTagRequest = 1;  // worker -> 0: records of its last unit (maybe none), wants work
constexpr int kTagWork = 2;     // 0 -> worker: [trial, points...] or [-1] = stop

std::vector<std::int64_t> pack_records(const std::vector<nets::TrialRecord>& records) {
  std::vector<std::int64_t> msg;
  for (const nets::TrialRecord& r : records) {
    std::int64_t bits;
    std::memcpy(&bits, &r.accuracy, sizeof bits);  // exact: results must match bit for bit
    msg.insert(msg.end(), {r.point, r.trial, bits});
  }
  return msg;
}

std::vector<nets::TrialRecord> unpack_records(const std::vector<std::int64_t>& msg) {
  std::vector<nets::TrialRecord> records;
  for (std::size_t k = 0; k + 2 < msg.size(); k += 3) {
    nets::TrialRecord r;
    r.point = msg[k];
    r.trial = static_cast<int>(msg[k + 1]);
    std::memcpy(&r.accuracy, &msg[k + 2], sizeof r.accuracy);
    records.push_back(r);
  }
  return records;
}

std::vector<std::int64_t> receive(int source, int tag, int* from) {
  MPI_Status status;
  MPI_Probe(source, tag, MPI_COMM_WORLD, &status);
  int count = 0;
  MPI_Get_count(&status, MPI_INT64_T, &count);
  std::vector<std::int64_t> msg(static_cast<std::size_t>(count));
  MPI_Recv(msg.data(), count, MPI_INT64_T, status.MPI_SOURCE, tag, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  if (from) *from = status.MPI_SOURCE;
  return msg;
}

void send(const std::vector<std::int64_t>& msg, int dest, int tag) {
  MPI_Send(msg.data(), static_cast<int>(msg.size()), MPI_INT64_T, dest, tag, MPI_COMM_WORLD);
}

void run_worker(const ComputeUnit& compute) {
  std::vector<std::int64_t> request;  // first request carries no records
  for (;;) {
    send(request, 0, kTagRequest);
    const std::vector<std::int64_t> msg = receive(0, kTagWork, nullptr);
    if (msg.empty() || msg[0] < 0) return;
    nets::WorkUnit unit;
    unit.trial = static_cast<int>(msg[0]);
    unit.points.assign(msg.begin() + 1, msg.end());
    request = pack_records(compute(unit));
  }
}

void run_coordinator(const Session& session, const std::vector<nets::WorkUnit>& units,
                     const ComputeUnit& compute, const OnRecords& on_records,
                     const OnIdle& on_idle) {
  std::mutex mutex;
  std::size_t next = 0;  // next unit to hand out (shared with the local worker thread)
  std::deque<std::vector<nets::TrialRecord>> local_results;
  std::exception_ptr local_error;
  bool local_done = false;

  std::thread local([&] {
    try {
      for (;;) {
        std::size_t mine;
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (next >= units.size()) break;
          mine = next++;
        }
        auto records = compute(units[mine]);
        std::lock_guard<std::mutex> lock(mutex);
        local_results.push_back(std::move(records));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      local_error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    local_done = true;
  });

  int stopped = 0;
  const int workers = session.size() - 1;
  auto last_idle = std::chrono::steady_clock::now();
  try {
    for (;;) {
      bool busy = false;
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kTagRequest, MPI_COMM_WORLD, &flag, &status);
      if (flag) {
        busy = true;
        int from = 0;
        const auto records = unpack_records(receive(status.MPI_SOURCE, kTagRequest, &from));
        if (!records.empty()) on_records(records, from);
        std::vector<std::int64_t> reply{-1};
        {
          std::lock_guard<std::mutex> lock(mutex);
          if (next < units.size()) {
            const nets::WorkUnit& unit = units[next++];
            reply.assign(1, unit.trial);
            reply.insert(reply.end(), unit.points.begin(), unit.points.end());
          }
        }
        send(reply, from, kTagWork);
        if (reply[0] < 0) ++stopped;
      }
      std::vector<std::vector<nets::TrialRecord>> mine;
      bool finished_locally;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (local_error) std::rethrow_exception(local_error);
        mine.assign(local_results.begin(), local_results.end());
        local_results.clear();
        finished_locally = local_done;
      }
      for (const auto& records : mine) {
        busy = true;
        on_records(records, 0);
      }
      if (finished_locally && stopped == workers && mine.empty()) break;
      const auto now = std::chrono::steady_clock::now();
      if (on_idle && now - last_idle > std::chrono::milliseconds(500)) {
        on_idle();
        last_idle = now;
      }
      // Poll gently: a blocking receive would spin a core the workers need.
      if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  } catch (...) {
    // The file holds what was recorded; the other ranks cannot be told to stop cleanly.
    local.detach();
    throw;
  }
  local.join();
}
#endif

}  // namespace

Session::Session() {
#ifdef PCMSIM_WITH_MPI
  if (!launched_by_mpirun()) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // Only rank 0's main thread calls MPI; its second thread only computes.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  active_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
#endif
}

Session::~Session() {
#ifdef PCMSIM_WITH_MPI
  if (active_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
#endif
}

bool Session::all_ok(bool ok) const {
#ifdef PCMSIM_WITH_MPI
  if (active_) {
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all == 1;
  }
#endif
  return ok;
}

void Session::sum(std::vector<double>& values) const {
#ifdef PCMSIM_WITH_MPI
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                  MPI_SUM, MPI_COMM_WORLD);
#else
  (void)values;
#endif
}

std::vector<double> Session::gather(double value) const {
#ifdef PCMSIM_WITH_MPI
  if (active_ && size_ > 1) {
    std::vector<double> all(rank_ == 0 ? size_ : 0);
    MPI_Gather(&value, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    return all;
  }
#endif
  return {value};
}

void Session::abort(int code) const {
#ifdef PCMSIM_WITH_MPI
  if (active_ && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

void run_units(const Session& session, const std::vector<nets::WorkUnit>& units,
               const ComputeUnit& compute, const OnRecords& on_records, const OnIdle& on_idle) {
#ifdef PCMSIM_WITH_MPI
  if (session.active() && session.size() > 1) {
    if (session.rank() == 0)
      run_coordinator(session, units, compute, on_records, on_idle);
    else
      run_worker(compute);
    return;
  }
#endif
  (void)session;
  (void)on_idle;
  run_serial(units, compute, on_records);
}

int set_threads_per_rank(const Session& session) {
  int threads = 0;
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    threads = std::atoi(env);
    if (threads > kMaxThreads)
      core::throw_invalid("cli", core::concat("OMP_NUM_THREADS = ", env, ": more than ",
                                              kMaxThreads, " threads"));
  }
  if (threads < 1) {
    const int cores = omp_get_num_procs();
    threads = std::max(1, cores / std::max(1, session.local_size()));
  }
  omp_set_num_threads(threads);
  return threads;
}

}  // namespace pcmsim::cli::mpi

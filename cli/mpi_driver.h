// Distribution of sweep work units over MPI ranks (`mpirun -np N pcmsim sweep ...`).
//
// Rank 0 is the coordinator: its main thread hands out units one at a time to whichever rank
// asks (dynamic load balancing), receives their records and passes them to `on_records` (which
// writes the results file); a second thread on rank 0 computes units too, so N ranks are N
// workers. Without MPI (PCMSIM_WITH_MPI undefined) or when not started by mpirun, the world is
// one rank and units run in order on the calling thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nets/sweep.h"

namespace pcmsim::cli::mpi {

// Initialises MPI when compiled with it and launched by mpirun (detected from the launcher's
// environment); finalises on destruction. rank 0 of 1 otherwise.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_size() const { return local_size_; }  // ranks on this node
  bool active() const { return active_; }
  // True on every rank when `ok` is true on every rank (a collective: all ranks must call it).
  bool all_ok(bool ok) const;
  // Element-wise sum of `values` over the ranks, on every rank (a collective).
  void sum(std::vector<double>& values) const;
  // Every rank's `value` on rank 0 (in rank order; empty elsewhere). A collective.
  std::vector<double> gather(double value) const;
  // Ends every rank after a failure that not all ranks saw (no deadlock waiting for work).
  [[noreturn]] void abort(int code) const;

 private:
  bool active_ = false;
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

using ComputeUnit = std::function<std::vector<nets::TrialRecord>(const nets::WorkUnit&)>;
// Called on rank 0's main thread: records of a finished unit, and the rank that computed it.
using OnRecords = std::function<void(const std::vector<nets::TrialRecord>&, int rank)>;
// Called on rank 0's main thread about twice a second while waiting (progress display).
using OnIdle = std::function<void()>;

// Runs `units` (meaningful on rank 0; ignored on the others, which receive theirs) with
// `compute` on every rank. Returns when all units are done (rank 0) or when told to stop.
void run_units(const Session& session, const std::vector<nets::WorkUnit>& units,
               const ComputeUnit& compute, const OnRecords& on_records, const OnIdle& on_idle);

// "OpenMP threads per rank": OMP_NUM_THREADS when set, else the cores of this node divided
// among its ranks (at least 1). Applied with omp_set_num_threads; returns the count.
int set_threads_per_rank(const Session& session);

}  // namespace pcmsim::cli::mpi

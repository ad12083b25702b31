// Crash-safe files shared by the resumable commands (`pcmsim sweep`, `pcmsim tune`): an
// append-only journal of text lines (each append fsynced; a torn last line from a kill is
// ignored when read), an exclusive lock on FILE.lock, and the atomic replacement of a results
// file by a finished FILE.partial.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pcmsim::nets::journal {

// FNV-1a of a text (the journals' header carries the fingerprint's hash).
std::uint64_t fnv1a(const std::string& text);
// "<kind> %016llx" of the fingerprint: the first line of a journal.
std::string header(const std::string& kind, const std::string& fingerprint);

// fsync a file or folder by path; failing to sync a file is an error (std::runtime_error).
void fsync_path(const std::string& path, bool directory, const char* where);
// The absolute folder of a path.
std::string folder_of(const std::string& path);

// Appends `lines` (each ending in '\n') to `path`, writing `header_line` first when the file is
// new, and fsyncs it (and its folder when new). Throws std::runtime_error naming the file.
void append(const std::string& path, const std::string& header_line, const std::string& lines,
            const char* where);
// The complete lines after the header (none when the file does not exist); a torn last line is
// ignored. Throws std::invalid_argument "'path' belongs to another <what>" when the header is
// not `header_line`.
std::vector<std::string> read(const std::string& path, const std::string& header_line,
                              const std::string& what, const char* where);

// Takes an exclusive flock on `lock_path` (released by the kernel even on kill -9); the lock
// and the file go when the last copy of the handle goes. Throws std::invalid_argument with
// `busy_message` when another process holds it.
std::shared_ptr<void> lock(const std::string& lock_path, const std::string& busy_message,
                           const char* where);

// The lock of a results file written by `pcmsim <command>`: lock() on FILE.lock, with a message
// that says who holds it and what to do.
std::shared_ptr<void> lock_results(const std::string& results_path, const char* command,
                                   const char* where);

// fsyncs `partial`, renames it over `path` and syncs the folder (removing `partial` on failure).
void commit(const std::string& partial, const std::string& path, const char* where);

}  // namespace pcmsim::nets::journal

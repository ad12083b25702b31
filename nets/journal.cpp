#include "nets/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace pcmsim::nets::journal {

using core::concat;

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string header(const std::string& kind, const std::string& fingerprint) {
  char hash[32];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(fnv1a(fingerprint)));
  return kind + " " + hash;
}

void fsync_path(const std::string& path, bool directory, const char* where) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) core::throw_io(where, concat("cannot open '", path, "' to sync it"));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && !directory) core::throw_io(where, concat("fsync of '", path, "' failed"));
}

std::string folder_of(const std::string& path) {
  return std::filesystem::absolute(path).parent_path().string();
}

void append(const std::string& path, const std::string& header_line, const std::string& lines,
            const char* where) {
  const bool fresh = !std::filesystem::exists(path);
  const std::string text = (fresh ? header_line + "\n" : std::string()) + lines;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) core::throw_io(where, concat("cannot open the journal '", path, "'"));
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n <= 0) {
      ::close(fd);
      core::throw_io(where, concat("writing the journal '", path, "' failed"));
    }
    written += static_cast<std::size_t>(n);
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) core::throw_io(where, concat("fsync of the journal '", path, "' failed"));
  if (fresh) fsync_path(folder_of(path), true, where);
}

std::vector<std::string> read(const std::string& path, const std::string& header_line,
                              const std::string& what, const char* where) {
  std::vector<std::string> lines;
  if (!std::filesystem::exists(path)) return lines;
  std::ifstream in(path, std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t pos = 0;
  bool first = true;
  while (pos < content.size()) {
    const std::size_t end = content.find('\n', pos);
    if (end == std::string::npos) break;  // torn last line (killed while appending)
    std::string line = content.substr(pos, end - pos);
    pos = end + 1;
    if (first) {
      first = false;
      if (line != header_line)
        core::throw_invalid(where, concat("'", path, "' belongs to another ", what));
      continue;
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::shared_ptr<void> lock(const std::string& lock_path, const std::string& busy_message,
                           const char* where) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) core::throw_io(where, concat("cannot create the lock file '", lock_path, "'"));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    core::throw_invalid(where, busy_message);
  }
  return std::shared_ptr<void>(nullptr, [fd, lock_path](void*) {
    std::remove(lock_path.c_str());
    ::close(fd);
  });
}

std::shared_ptr<void> lock_results(const std::string& results_path, const char* command,
                                   const char* where) {
  const std::string lock_path = results_path + ".lock";
  return lock(lock_path,
              concat("results file '", results_path, "': another pcmsim ", command,
                     " is writing it (it holds '", lock_path, "'); wait for it to finish, or "
                     "give another --out"),
              where);
}

void commit(const std::string& partial, const std::string& path, const char* where) {
  try {
    fsync_path(partial, false, where);
  } catch (...) {
    std::remove(partial.c_str());
    throw;
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    core::throw_io(where, concat("cannot move the finished file to '", path, "'"));
  }
  fsync_path(folder_of(path), true, where);
}

}  // namespace pcmsim::nets::journal

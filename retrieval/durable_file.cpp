#include "retrieval/durable_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace thalamus::retrieval {
namespace {

std::runtime_error SystemError(const std::string& what, const std::string& path, int error) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(error));
}

std::string TempPath(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::string ParentDirectory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

std::mutex crash_point_mutex;
std::string armed_crash_point;  // guarded by crash_point_mutex
bool crash_point_initialized = false;

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), temp_path_(TempPath(path_)) {
  file_ = std::fopen(temp_path_.c_str(), "wbx");
  if (file_ == nullptr) throw SystemError("cannot create", temp_path_, errno);
}

AtomicFile::~AtomicFile() { Discard(); }

void AtomicFile::Discard() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(temp_path_.c_str());
}

void AtomicFile::Write(const void* data, size_t bytes) {
  if (file_ == nullptr) throw std::runtime_error("write to " + path_ + " after commit");
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) throw SystemError("cannot write", temp_path_, errno);
}

size_t AtomicFile::size() {
  const long position = std::ftell(file_);
  if (position < 0) throw SystemError("cannot tell position in", temp_path_, errno);
  return static_cast<size_t>(position);
}

void AtomicFile::Commit() {
  if (file_ == nullptr) throw std::runtime_error("double commit of " + path_);
  if (std::fflush(file_) != 0) throw SystemError("cannot write", temp_path_, errno);
  if (::fsync(::fileno(file_)) != 0) throw SystemError("cannot fsync", temp_path_, errno);
  const int close_result = std::fclose(file_);
  file_ = nullptr;
  if (close_result != 0) {
    std::remove(temp_path_.c_str());
    throw SystemError("cannot close", temp_path_, errno);
  }
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    std::remove(temp_path_.c_str());
    throw SystemError("cannot rename into place", path_, error);
  }
  SyncDirectory(ParentDirectory(path_));
}

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw SystemError("cannot open directory", dir, errno);
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) throw SystemError("cannot fsync directory", dir, error);
}

DirectoryLock::DirectoryLock(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw std::runtime_error("cannot create index directory " + dir + ": " + error.message());
  const std::string path = (std::filesystem::path(dir) / "LOCK").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw SystemError("cannot open lock file", path, errno);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int failure = errno;
    ::close(fd_);
    throw SystemError("cannot lock", path, failure);
  }
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void ArmCrashPoint(std::string name) {
  std::lock_guard lock(crash_point_mutex);
  armed_crash_point = std::move(name);
  crash_point_initialized = true;  // an explicit arm wins over the environment
}

void CrashPoint(std::string_view name) {
  std::lock_guard lock(crash_point_mutex);
  if (!crash_point_initialized) {
    if (const char* env = std::getenv("THALAMUS_RETRIEVAL_CRASH_POINT")) armed_crash_point = env;
    crash_point_initialized = true;
  }
  if (!armed_crash_point.empty() && armed_crash_point == name) std::raise(SIGKILL);
}

}  // namespace thalamus::retrieval

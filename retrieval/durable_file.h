// retrieval/durable_file: files that appear whole or not at all, and the
// writer lock of an index directory.
//
// AtomicFile writes into a temporary file beside its target; Commit() flushes,
// fsyncs, renames it over the target and fsyncs the directory, so after a
// crash or power loss the target holds either its old or its new contents. An
// AtomicFile destroyed without Commit() removes its temporary file.
// DirectoryLock is an exclusive flock on <dir>/LOCK: one writer per index at
// a time, across processes; readers need no lock.
// Errors: std::runtime_error naming the path and the system error.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace thalamus::retrieval {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void Write(const void* data, size_t bytes);
  void Write(std::string_view text) { Write(text.data(), text.size()); }
  std::FILE* stream() { return file_; }  // for writers that take a FILE* (faiss::write_index)
  // Bytes written so far.
  size_t size();
  void Commit();

 private:
  void Discard();

  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
};

// fsyncs a directory so that renames and unlinks in it are durable.
void SyncDirectory(const std::string& dir);

class DirectoryLock {
 public:
  // Creates `dir` if needed and blocks until the lock is held.
  explicit DirectoryLock(const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

 private:
  int fd_ = -1;
};

// Test hook for crash-safety tests: when `name` equals the armed crash point,
// the process kills itself with SIGKILL on the spot, as a power cut would stop
// it. Armed by ArmCrashPoint or the THALAMUS_RETRIEVAL_CRASH_POINT environment
// variable; nothing is armed by default.
void CrashPoint(std::string_view name);
void ArmCrashPoint(std::string name);

}  // namespace thalamus::retrieval

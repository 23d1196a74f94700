// A real `flag-sidecar serve` for the tests: on 127.0.0.1:0 and a Unix socket, with the bound
// addresses read back from its log.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flagsidecar::harness {

class Sidecar {
 public:
  // Starts the sidecar serving flags (a path) and returns once it has logged both addresses and
  // answers calls; throws std::runtime_error (with its log) if it does not within 30 s.
  explicit Sidecar(const std::string& flags);
  ~Sidecar();  // kills it
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  const std::string& tcp_target() const { return tcp_; }    // "127.0.0.1:port"
  const std::string& unix_target() const { return unix_; }  // "unix:///tmp/.../grpc.sock"

 private:
  void Stop();
  void Read(int fd);
  std::string Log();
  void WaitAnswering(const std::string& target);

  std::string dir_;
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> log_;
  bool exited_ = false;
  std::string tcp_, unix_;
};

// $FLAG_SIDECAR if set, else the repository's .venv/bin/flag-sidecar (made by `make`).
std::string SidecarCommand();

// The directory the tests run in is clients/cpp: paths in the repository are relative to it.
inline constexpr const char* kRepository = "../..";

}  // namespace flagsidecar::harness

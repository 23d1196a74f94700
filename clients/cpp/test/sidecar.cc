#include "sidecar.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "flagsidecar/client.h"

extern char** environ;

namespace flagsidecar::harness {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);

// This process's environment without FLAG_SIDECAR_* (the caller's settings are not the
// test's), with a management port of 0: tests and other sidecars run side by side.
std::vector<std::string> Environment() {
  std::vector<std::string> variables;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    if (std::strncmp(*variable, "FLAG_SIDECAR_", 13) != 0) variables.emplace_back(*variable);
  }
  variables.emplace_back("FLAG_SIDECAR_MANAGEMENT_LISTEN=127.0.0.1:0");
  variables.emplace_back("PYTHONUNBUFFERED=1");
  return variables;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

std::string SidecarCommand() {
  if (const char* command = std::getenv("FLAG_SIDECAR"); command != nullptr && *command != '\0') {
    return command;
  }
  const auto command = std::filesystem::absolute(std::string(kRepository) + "/.venv/bin/flag-sidecar");
  if (!std::filesystem::exists(command)) {
    throw std::runtime_error("no sidecar to test against: " + command.string() +
                             " (run `make test-cpp` from the repository root, which installs it, "
                             "or set FLAG_SIDECAR to a flag-sidecar command)");
  }
  return command.string();
}

Sidecar::Sidecar(const std::string& flags) {
  // Not a long temporary path: a socket path must stay under 108 bytes.
  char dir[] = "/tmp/flag-sidecar-cpp-XXXXXX";
  if (mkdtemp(dir) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + strerror(errno));
  dir_ = dir;
  std::vector<std::string> arguments{SidecarCommand(), "serve", "--flags", flags, "--listen",
                                     "127.0.0.1:0", "--listen", "unix://" + dir_ + "/grpc.sock"};
  auto environment = Environment();
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  const int spawned = posix_spawn(&pid_, arguments[0].c_str(), &actions, nullptr,
                                  Pointers(arguments).data(), Pointers(environment).data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    pid_ = -1;
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("cannot start " + arguments[0] + ": " + strerror(spawned));
  }
  // The reader goes on until the sidecar exits, so that it never blocks on a full pipe.
  reader_ = std::thread(&Sidecar::Read, this, pipe_fds[0]);
  {
    std::unique_lock lock(mutex_);
    const bool listening = changed_.wait_for(lock, kStartTimeout, [this] {
      return exited_ || (!tcp_.empty() && !unix_.empty());
    });
    if (!listening || exited_) {
      lock.unlock();
      const auto log = Log();
      Stop();
      throw std::runtime_error("flag-sidecar serve did not listen on both addresses:\n" + log);
    }
  }
  try {
    WaitAnswering(tcp_);
  } catch (...) {
    Stop();
    throw;
  }
}

Sidecar::~Sidecar() { Stop(); }

void Sidecar::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
  dir_.clear();
}

void Sidecar::Read(int fd) {
  static const std::regex listening("^listening on (\\S+) ");
  std::string pending;
  char buffer[4096];
  ssize_t got;
  while ((got = read(fd, buffer, sizeof buffer)) > 0 || (got < 0 && errno == EINTR)) {
    if (got < 0) continue;
    pending.append(buffer, static_cast<std::size_t>(got));
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      std::string line = pending.substr(0, end);
      pending.erase(0, end + 1);
      const auto entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      std::smatch match;
      std::string message;
      const bool is_listening = entry.is_object() && entry.value("event", "") == "listening";
      if (is_listening) message = entry.value("message", "");
      std::lock_guard lock(mutex_);
      log_.push_back(std::move(line));
      if (is_listening && std::regex_search(message, match, listening)) {
        (match[1].str().rfind("unix:", 0) == 0 ? unix_ : tcp_) = match[1].str();
        changed_.notify_all();
      }
    }
  }
  close(fd);
  std::lock_guard lock(mutex_);
  exited_ = true;
  changed_.notify_all();
}

std::string Sidecar::Log() {
  std::lock_guard lock(mutex_);
  std::string text;
  for (const auto& line : log_) text += line + "\n";
  return text;
}

// Listening is not answering yet: until its flag set is loaded, the sidecar says UNAVAILABLE.
void Sidecar::WaitAnswering(const std::string& target) {
  const Client client(target);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  for (;;) {
    try {
      client.EvaluateAll(User{});
      return;
    } catch (const Unavailable& error) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error(std::string("the sidecar does not answer: ") + error.what() +
                                 "\n" + Log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace flagsidecar::harness

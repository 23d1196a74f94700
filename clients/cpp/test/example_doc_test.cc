// docs/clients/cpp.md shows example/main.cc as it is, and the output that program (built next to
// this test by the same Makefile) prints against a real sidecar serving examples/flags.yaml, as
// `make run` does, here over a Unix socket.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "sidecar.h"

namespace flagsidecar {
namespace {

std::string Read(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Its standard output; fails the test unless it exits with 0.
std::string Output(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::string output;
  char buffer[4096];
  for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    output.append(buffer, got);
  }
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << " failed: " << output;
  return output;
}

TEST(DocsExample, RunsAsShown) {
  const std::string repository = harness::kRepository;
  const auto page = Read(repository + "/docs/clients/cpp.md");
  std::smatch blocks;
  ASSERT_TRUE(std::regex_search(page, blocks,
                                std::regex("```cpp\n([^]*?)```\n\nOutput:\n\n```\n([^]*?)```")))
      << "docs/clients/cpp.md has no C++ program followed by its output";
  ASSERT_EQ(blocks[1].str(), Read("example/main.cc"))
      << "docs/clients/cpp.md does not show clients/cpp/example/main.cc as it is";
  const auto example = std::filesystem::read_symlink("/proc/self/exe").parent_path() /
                       "flagsidecar_example";
  const harness::Sidecar sidecar(repository + "/examples/flags.yaml");
  EXPECT_EQ(Output(example.string() + " " + sidecar.unix_target()), blocks[2].str());
}

}  // namespace
}  // namespace flagsidecar

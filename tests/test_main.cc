// main() of every test binary: the tests' temporary files live in one fresh directory per run
// (TEST_TMPDIR, which ::testing::TempDir() returns and the agents and tools a test starts inherit),
// removed when every test passed and kept, with its path printed, when one failed.
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* base = getenv("TMPDIR");
  std::string dir = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mimic-test-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror(("mkdtemp " + dir).c_str());
    return 2;
  }
  // mkdtemp makes it 0700; tests that run a program as another user (verify starts the target
  // as the owner of its home, e.g. nobody) need to reach their files below it, as under /tmp.
  chmod(dir.c_str(), 0755);
  setenv("TEST_TMPDIR", dir.c_str(), 1);
  const int rc = RUN_ALL_TESTS();
  if (rc == 0) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::fprintf(stderr, "test files kept in %s\n", dir.c_str());
  }
  return rc;
}

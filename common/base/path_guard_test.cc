#include "common/base/path_guard.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/base/fs.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

class PathGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "guard_XXXXXX";
    base_ = mkdtemp(t.data());
    ASSERT_TRUE(MakeDirs(base_ + "/root/mi").ok());
    ASSERT_TRUE(MakeDirs(base_ + "/outside").ok());
  }
  std::string base_;
};

TEST_F(PathGuardTest, InsideIsAllowed) {
  PathGuard g({base_ + "/root"});
  auto r = g.Resolve(base_ + "/root/mi/conf/deployment.toml");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, base_ + "/root/mi/conf/deployment.toml");
  EXPECT_TRUE(g.Resolve(base_ + "/root//mi/./x").ok());
}

TEST_F(PathGuardTest, OutsideDotDotAndRelativeAreRefused) {
  PathGuard g({base_ + "/root"});
  EXPECT_EQ(g.Resolve(base_ + "/outside/x").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve(base_ + "/root/../outside").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve("root/mi").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(g.Resolve(base_ + "/rootish").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(g.ResolveUnder(base_ + "/root/mi", "../x").ok());
  EXPECT_FALSE(g.ResolveUnder(base_ + "/root/mi", "/etc/passwd").ok());
}

TEST_F(PathGuardTest, SymlinkOutIsRefusedSymlinkInIsAllowed) {
  PathGuard g({base_ + "/root"});
  ASSERT_EQ(symlink((base_ + "/outside").c_str(), (base_ + "/root/mi/out").c_str()), 0);
  ASSERT_EQ(symlink((base_ + "/root/mi").c_str(), (base_ + "/root/in").c_str()), 0);
  auto out = g.Resolve(base_ + "/root/mi/out/file");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(out.status().message().find("symlink"), std::string::npos);
  EXPECT_TRUE(g.Resolve(base_ + "/root/in/file").ok());
}

}  // namespace
}  // namespace mimic::common

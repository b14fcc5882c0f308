#include "common/config/step_params.h"

#include <string>

#include "common/config/catalogue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::common {
namespace {

using ::testing::HasSubstr;

TEST(StepParamsTest, EveryCatalogueStepHasASchema) {
  for (const std::string& step : StepCatalogue()) {
    EXPECT_NE(FindStepSchema(step), nullptr) << step;
  }
  EXPECT_EQ(FindStepSchema("no_such_step"), nullptr);
  EXPECT_TRUE(CheckStepParam("no_such_step", "any", "thing").ok());
}

TEST(StepParamsTest, ValuesAreCheckedByKind) {
  EXPECT_TRUE(CheckStepParam("merge_config", "conflict", "target").ok());
  absl::Status s = CheckStepParam("merge_config", "conflict", "whatever");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "merge_config: param conflict = \"whatever\": must be one of: source, target, fail");
  EXPECT_THAT(std::string(CheckStepParam("exec", "timeout_seconds", "0").message()),
              HasSubstr("a whole number from 1 to 604800"));
  EXPECT_FALSE(CheckStepParam("exec", "timeout_seconds", "+5").ok());
  EXPECT_FALSE(CheckStepParam("exec", "timeout_seconds", "5s").ok());
  EXPECT_FALSE(CheckStepParam("exec", "timeout_seconds", "99999999999999999999").ok());
  EXPECT_TRUE(CheckStepParam("exec", "command", "a\nb").ok());  // a script may span lines
  EXPECT_FALSE(CheckStepParam("exec", "command", "").ok());
  EXPECT_FALSE(CheckStepParam("exec", "command", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(CheckStepParam("exec", "chdir", "/a\nb").ok());
  EXPECT_FALSE(CheckStepParam("exec", "chdir", "a").ok());
  EXPECT_TRUE(CheckStepParam("backup_databases", "password.WSO2_DB", "DB_PW_1").ok());
  EXPECT_FALSE(CheckStepParam("backup_databases", "password.WSO2_DB", "1DB").ok());
  EXPECT_FALSE(CheckStepParam("backup_databases", "password.", "DB").ok());
  EXPECT_FALSE(CheckStepParam("preflight", "require_java", "1").ok());
  // A path or command is not echoed (it may hold a secret); an enum, number or boolean is.
  EXPECT_THAT(std::string(CheckStepParam("exec", "chdir", "rel-s3cret").message()),
              testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(std::string(CheckStepParam("exec", "nope", "v").message()),
              HasSubstr("its parameters: command, timeout_seconds, chdir, creates, removes"));
  EXPECT_THAT(std::string(CheckStepParam("copy_carbonapps", "x", "v").message()),
              HasSubstr("it takes none"));
}

TEST(StepParamsTest, TypedReadsUseTheSchemaDefaults) {
  EXPECT_EQ(*StepParamInt("exec", "timeout_seconds", nullptr), 600);
  EXPECT_EQ(*StepParamString("merge_config", "conflict", nullptr), "source");
  EXPECT_EQ(*StepParamString("copy_deployment", "overwrite_shipped", nullptr), "modified");
  EXPECT_FALSE(*StepParamBool("preflight", "require_java", nullptr));
  const std::string yes = "true", bad = "never";
  EXPECT_TRUE(*StepParamBool("preflight", "require_java", &yes));
  EXPECT_FALSE(StepParamString("merge_config", "conflict", &bad).ok());
  absl::StatusOr<std::string> cmd = StepParamString("exec", "command", nullptr);
  ASSERT_FALSE(cmd.ok());
  EXPECT_THAT(std::string(cmd.status().message()), HasSubstr("exec: param command is required"));
  EXPECT_FALSE(StepParamInt("exec", "nope", nullptr).ok());
}

TEST(StepParamsTest, CheckStepParamsWholeStep) {
  EXPECT_TRUE(CheckStepParams("merge_config", {{"conflict", "fail"}}, true).ok());
  EXPECT_THAT(std::string(CheckStepParams("exec", {}, false).message()),
              HasSubstr("param command is required"));
  EXPECT_THAT(std::string(CheckStepParams("verify", {}, true).message()),
              HasSubstr("takes no [steps.settings]"));
}

}  // namespace
}  // namespace mimic::common

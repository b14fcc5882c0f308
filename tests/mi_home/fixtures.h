// Test-only: WSO2's real MI files (../shared/fixtures beside a developer's clone, the build's
// MIMIC_FIXTURES_DIR). They are optional: tests that compare against WSO2's real files use them
// when present and GTEST_SKIP when not; everything else uses homes made by mi_home.h.
#ifndef MIMIC_TESTS_MI_HOME_FIXTURES_H_
#define MIMIC_TESTS_MI_HOME_FIXTURES_H_

#include <string>

namespace mimic::mi_home {

// The build's MIMIC_FIXTURES_DIR (it may not exist).
std::string FixturesDir();

// True when FixturesDir() holds mi/<v>/ for every version and the sample CApp.
bool HaveFixtures();

// What a skipping test says.
inline constexpr char kNoFixtures[] =
    "WSO2's real MI files are absent (../shared/fixtures absent; MIMIC_FIXTURES_DIR = ";

}  // namespace mimic::mi_home

// In a test body: skips the test, saying so plainly, when the fixtures are absent.
#define MIMIC_SKIP_WITHOUT_FIXTURES()    \
  if (!::mimic::mi_home::HaveFixtures()) \
  GTEST_SKIP() << ::mimic::mi_home::kNoFixtures << ::mimic::mi_home::FixturesDir() << ")"

#endif  // MIMIC_TESTS_MI_HOME_FIXTURES_H_

#include "controller/report/report_formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/report/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kT0 = 1795300000000000;  // 2026-11-21T22:26:40Z
constexpr char kHostile[] = "<script>alert(1)</script> & \"dq\" 'sq'";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult Shell(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class ReportFormatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "mimic-report-formats-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto a = Audit::Open("sqlite:" + dir_ + "/audit.sqlite");
    ASSERT_TRUE(a.ok()) << a.status();
    audit_ = std::move(*a);
    ASSERT_EQ(Shell("xmllint --version").exit_code, 0) << "xmllint missing: apt-get install "
                                                          "libxml2-utils";
  }
  void TearDown() override {
    audit_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  v1::Event Ev(const std::string& run, const std::string& host, uint64_t seq) {
    v1::Event e;
    e.set_run_id(run);
    e.set_host(host);
    e.set_seq(seq);
    e.set_time_unix_micros(kT0 + static_cast<int64_t>(seq) * 1000000);
    return e;
  }
  void Append(const v1::Event& e) { ASSERT_TRUE(audit_->AppendEvent("r-1", e).ok()); }

  void Start(const std::string& run, const std::string& host, uint64_t seq) {
    v1::Event e = Ev(run, host, seq);
    e.mutable_run_started()->mutable_plan()->set_mode(v1::MODE_APPLY);
    e.mutable_run_started()->set_source_version("1.2.0");
    e.mutable_run_started()->set_target_version("4.2.0");
    Append(e);
  }
  void Step(const std::string& run, const std::string& host, uint64_t& seq, int idx,
            const std::string& name, v1::StepStatus status, const std::string& message,
            const std::vector<std::string>& log = {}, bool files = false) {
    v1::Event e = Ev(run, host, ++seq);
    e.mutable_step_started()->set_step(name);
    e.mutable_step_started()->set_index(idx);
    Append(e);
    for (const std::string& line : log) {
      e = Ev(run, host, ++seq);
      e.mutable_log()->set_step(name);
      e.mutable_log()->set_level(status == v1::STEP_FAILED ? v1::LOG_ERROR : v1::LOG_INFO);
      e.mutable_log()->set_text(line);
      Append(e);
    }
    e = Ev(run, host, ++seq);
    v1::StepFinished* f = e.mutable_step_finished();
    f->set_step(name);
    f->set_index(idx);
    f->set_status(status);
    f->set_message(message);
    f->set_duration_micros(1250000);
    if (files) {
      v1::FileChange* c = f->add_changes();
      c->set_path("/opt/mi-4.2.0/repository/deployment/server/carbonapps/orders.car");
      c->set_action(v1::ACTION_CREATE);
      c->set_size(4096);
      c->set_sha256_after(std::string(64, 'b'));
      c = f->add_changes();
      c->set_path("/opt/mi-4.2.0/conf/deployment.toml");
      c->set_action(v1::ACTION_UPDATE);
      c->set_size(2048);
      c->set_sha256_before("0123456789ab" + std::string(52, 'c'));
      c->set_sha256_after("fedcba987654" + std::string(52, 'd'));
      v1::ConfigChange* cc = f->add_config_changes();
      cc->set_file("conf/deployment.toml");
      cc->set_key("keystore.primary.password");
      cc->set_action("change");
      cc->set_old_value("Hunter2-secret");  // the audit redacts it
      cc->set_new_value("Hunter2-secret");
    }
    Append(e);
  }
  void Finish(const std::string& run, const std::string& host, uint64_t seq, v1::RunStatus s,
              const std::string& message) {
    v1::Event e = Ev(run, host, seq);
    e.mutable_run_finished()->set_status(s);
    e.mutable_run_finished()->set_message(message);
    Append(e);
  }

  // dev: mi-dev-1 changed (ok, changed with files, skipped). prod batch 1: mi-prod-1 fails
  // merge_config (hostile message, log lines), mi-prod-2 never answers; prod batch 2:
  // mi-prod-3 is interrupted after an ok step.
  void BuildRollout(bool finish) {
    ASSERT_TRUE(audit_
                    ->BeginRollout({.id = "r-1",
                                    .plan_path = "/srv/plans/upgrade.toml",
                                    .plan_sha256 = std::string(64, 'e'),
                                    .inventory_path = "/srv/inventory.toml",
                                    .os_user = "alice",
                                    .cert_subject = "CN=alice & co",
                                    .started_at_us = kT0})
                    .ok());
    ASSERT_TRUE(audit_->RecordStage({"r-1", "dev", 0, "ok", kT0, kT0 + 9000000}).ok());
    ASSERT_TRUE(audit_->RecordStage({"r-1", "prod", 1, "failed", kT0 + 10000000, 0}).ok());
    ASSERT_TRUE(audit_->RecordBatch({"r-1", "dev", 0, {"mi-dev-1"}}).ok());
    ASSERT_TRUE(audit_->RecordBatch({"r-1", "prod", 0, {"mi-prod-1", "mi-prod-2"}}).ok());
    ASSERT_TRUE(audit_->RecordBatch({"r-1", "prod", 1, {"mi-prod-3"}}).ok());
    ASSERT_TRUE(audit_->RegisterRun("run-d1", "r-1", "mi-dev-1", "dev", 0, v1::MODE_APPLY).ok());
    ASSERT_TRUE(audit_->RegisterRun("run-p1", "r-1", "mi-prod-1", "prod", 0, v1::MODE_APPLY).ok());
    ASSERT_TRUE(audit_->RegisterRun("run-p2", "r-1", "mi-prod-2", "prod", 0, v1::MODE_APPLY).ok());
    ASSERT_TRUE(audit_->RegisterRun("run-p3", "r-1", "mi-prod-3", "prod", 1, v1::MODE_APPLY).ok());
    uint64_t seq = 1;
    Start("run-d1", "mi-dev-1", 1);
    Step("run-d1", "mi-dev-1", seq, 0, "preflight", v1::STEP_OK, "");
    Step("run-d1", "mi-dev-1", seq, 1, "copy_carbonapps", v1::STEP_CHANGED, "1 CApp copied",
         {"copied orders.car"}, true);
    Step("run-d1", "mi-dev-1", seq, 2, "merge_config", v1::STEP_SKIPPED, "nothing to merge");
    Finish("run-d1", "mi-dev-1", ++seq, v1::RUN_CHANGED, "");
    seq = 1;
    Start("run-p1", "mi-prod-1", 1);
    Step("run-p1", "mi-prod-1", seq, 0, "preflight", v1::STEP_OK, "");
    Step("run-p1", "mi-prod-1", seq, 2, "merge_config", v1::STEP_FAILED, kHostile,
         {"reading conf/deployment.toml", "line 12: unexpected '<' & '>'"});
    Finish("run-p1", "mi-prod-1", ++seq, v1::RUN_FAILED, "merge_config failed");
    seq = 1;
    Start("run-p3", "mi-prod-3", 1);
    Step("run-p3", "mi-prod-3", seq, 0, "preflight", v1::STEP_OK, "");
    Finish("run-p3", "mi-prod-3", ++seq, v1::RUN_INTERRUPTED, "agent restarted");
    if (finish) {
      ASSERT_TRUE(audit_->FinishRollout("r-1", "failed", "prod: 2 of 3 failed").ok());
    }
  }

  std::string Xpath(const std::string& file, const std::string& expr, bool html = false) {
    const std::string cmd =
        absl::StrCat("xmllint ", html ? "--html " : "", "--xpath '", expr, "' ", file);
    return Trim(Shell(cmd).output);
  }

  std::string dir_;
  std::unique_ptr<Audit> audit_;
};

const std::string kXsd = std::string(MIMIC_SOURCE_DIR) + "/tests/testdata/junit.xsd";

TEST(XmlEscapeTest, EscapesEverything) {
  EXPECT_EQ(XmlEscape(kHostile),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;dq&quot; &#39;sq&#39;");
  EXPECT_EQ(XmlEscape("a\tb\nc\rd"), "a\tb\nc&#13;d");
  EXPECT_EQ(XmlEscape("a\tb\nc", true), "a&#9;b&#10;c");
  EXPECT_EQ(XmlEscape(std::string("bell\x07 nul\0!", 11)), "bell\xEF\xBF\xBD nul\xEF\xBF\xBD!");
  EXPECT_EQ(XmlEscape("caf\xC3\xA9 \xE2\x82\xAC"), "caf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_EQ(XmlEscape("bad \xC3 \xFF \xEF\xBF\xBF"),
            "bad \xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD"
            "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(ReportFormatsTest, UnknownRollout) {
  EXPECT_EQ(ReportJunit(*audit_, "r-none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReportHtml(*audit_, "r-none").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReportFormatsTest, SchemaRejectsBrokenJunit) {
  // The schema is not a no-op: a testsuite without its required counts is refused.
  const std::string bad = Write("bad.xml", "<testsuites><testsuite name=\"x\"/></testsuites>");
  EXPECT_NE(Shell("xmllint --noout --schema " + kXsd + " " + bad).exit_code, 0);
}

TEST_F(ReportFormatsTest, JunitValidatesAndCounts) {
  BuildRollout(/*finish=*/true);
  absl::StatusOr<std::string> xml = ReportJunit(*audit_, "r-1");
  ASSERT_TRUE(xml.ok()) << xml.status();
  const std::string file = Write("report.xml", *xml);
  CommandResult v = Shell("xmllint --noout --schema " + kXsd + " " + file);
  EXPECT_EQ(v.exit_code, 0) << v.output << "\n" << *xml;

  EXPECT_EQ(Xpath(file, "count(//testsuite)"), "4");
  EXPECT_EQ(Xpath(file, "string(/testsuites/@tests)"), "8");
  EXPECT_EQ(Xpath(file, "string(/testsuites/@failures)"), "1");
  EXPECT_EQ(Xpath(file, "string(/testsuites/@errors)"), "2");
  const std::string dev = "//testsuite[@name=\"dev/mi-dev-1\"]";
  EXPECT_EQ(Xpath(file, "string(" + dev + "/@tests)"), "3");
  EXPECT_EQ(Xpath(file, "string(" + dev + "/@skipped)"), "1");
  EXPECT_EQ(Xpath(file, "string(" + dev + "/@timestamp)"), "2026-11-21T22:26:41");
  EXPECT_EQ(Xpath(file, "string(" + dev + "/testcase[@name=\"merge_config\"]/skipped/@message)"),
            "nothing to merge");
  EXPECT_EQ(Xpath(file, "string(" + dev + "/testcase[1]/@classname)"), "mimic.dev.mi-dev-1");
  const std::string out =
      Xpath(file, "string(" + dev + "/testcase[@name=\"copy_carbonapps\"]/system-out)");
  EXPECT_THAT(out, HasSubstr("1 CApp copied"));
  EXPECT_THAT(out, HasSubstr("update /opt/mi-4.2.0/conf/deployment.toml (2048 bytes)"));
  EXPECT_THAT(out, HasSubstr("info copied orders.car"));
  EXPECT_EQ(Xpath(file, "string(" + dev + "/testcase[1]/@time)"), "1.250");
  EXPECT_EQ(Xpath(file, "string(" + dev + "/properties/property[@name=\"run_id\"]/@value)"),
            "run-d1");

  const std::string p1 = "//testsuite[@name=\"prod/mi-prod-1\"]";
  EXPECT_EQ(Xpath(file, "string(" + p1 + "/@failures)"), "1");
  EXPECT_EQ(Xpath(file, "string(" + p1 + "/testcase[@name=\"merge_config\"]/failure/@message)"),
            kHostile);
  const std::string body =
      Xpath(file, "string(" + p1 + "/testcase[@name=\"merge_config\"]/failure)");
  EXPECT_THAT(body, HasSubstr("error reading conf/deployment.toml"));
  EXPECT_THAT(body, HasSubstr("line 12: unexpected '<' & '>'"));
  EXPECT_EQ(Xpath(file, "count(" + p1 + "/testcase[@name=\"run\"])"), "0");

  const std::string p2 = "//testsuite[@name=\"prod/mi-prod-2\"]";
  EXPECT_EQ(Xpath(file, "string(" + p2 + "/@errors)"), "1");
  EXPECT_THAT(Xpath(file, "string(" + p2 + "/testcase[@name=\"run\"]/error/@message)"),
              HasSubstr("unreachable"));
  const std::string p3 = "//testsuite[@name=\"prod/mi-prod-3\"]";
  EXPECT_EQ(Xpath(file, "string(" + p3 + "/testcase[@name=\"run\"]/error/@type)"), "interrupted");
  EXPECT_EQ(Xpath(file, "string(" + p3 + "/testcase[@name=\"run\"]/error/@message)"),
            "agent restarted");

  EXPECT_THAT(*xml, Not(HasSubstr("<script>")));
  EXPECT_THAT(*xml, Not(HasSubstr("Hunter2-secret")));
}

TEST_F(ReportFormatsTest, JunitWhileRunningSkipsUnstartedHosts) {
  BuildRollout(/*finish=*/false);
  absl::StatusOr<std::string> xml = ReportJunit(*audit_, "r-1");
  ASSERT_TRUE(xml.ok()) << xml.status();
  const std::string file = Write("running.xml", *xml);
  EXPECT_EQ(Shell("xmllint --noout --schema " + kXsd + " " + file).exit_code, 0) << *xml;
  const std::string p2 = "//testsuite[@name=\"prod/mi-prod-2\"]";
  EXPECT_EQ(Xpath(file, "string(" + p2 + "/testcase[@name=\"run\"]/skipped/@message)"),
            "not started yet");
  EXPECT_EQ(Xpath(file, "string(/testsuites/@errors)"), "1");
}

TEST_F(ReportFormatsTest, JunitNamesRepeatedRunsApart) {
  BuildRollout(/*finish=*/true);
  ASSERT_TRUE(
      audit_->RegisterRun("run-p1-rb", "r-1", "mi-prod-1", "prod", 0, v1::MODE_ROLLBACK).ok());
  v1::Event e = Ev("run-p1-rb", "mi-prod-1", 1);
  e.mutable_run_started()->mutable_plan()->set_mode(v1::MODE_ROLLBACK);
  Append(e);
  uint64_t seq = 1;
  Step("run-p1-rb", "mi-prod-1", seq, 0, "restore_snapshot", v1::STEP_CHANGED, "restored");
  Finish("run-p1-rb", "mi-prod-1", ++seq, v1::RUN_CHANGED, "");
  absl::StatusOr<std::string> xml = ReportJunit(*audit_, "r-1");
  ASSERT_TRUE(xml.ok()) << xml.status();
  const std::string file = Write("rb.xml", *xml);
  EXPECT_EQ(Shell("xmllint --noout --schema " + kXsd + " " + file).exit_code, 0) << *xml;
  EXPECT_THAT(*xml, HasSubstr("name=\"prod/mi-prod-1 [apply run-p1]\""));
  EXPECT_THAT(*xml, HasSubstr("name=\"prod/mi-prod-1 [rollback run-p1-rb]\""));
}

TEST_F(ReportFormatsTest, HtmlIsWellFormedSelfContainedAndEscaped) {
  BuildRollout(/*finish=*/true);
  absl::StatusOr<std::string> html = ReportHtml(*audit_, "r-1");
  ASSERT_TRUE(html.ok()) << html.status();
  const std::string file = Write("report.html", *html);
  CommandResult v = Shell("xmllint --html --noout " + file);
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_EQ(v.output, "");

  // Self-contained: no URL, no script, no external resource.
  for (const char* banned :
       {"http://", "https://", "src=", "href=", "<script", "<link", "@import", "url("}) {
    EXPECT_THAT(*html, Not(HasSubstr(banned))) << banned;
  }
  EXPECT_THAT(*html, Not(HasSubstr("Hunter2-secret")));
  // Header.
  EXPECT_THAT(*html, HasSubstr("r-1"));
  EXPECT_THAT(*html, HasSubstr(std::string(64, 'e')));
  EXPECT_THAT(*html, HasSubstr("alice"));
  EXPECT_THAT(*html, HasSubstr("CN=alice &amp; co"));
  EXPECT_THAT(*html, HasSubstr("2026-11-21T22:26:40Z"));
  // Timeline: both stages and all three batches.
  EXPECT_EQ(Xpath(file, "count(//table[@class=\"timeline\"]//tr[@class=\"stage\"])", true), "2");
  EXPECT_EQ(Xpath(file, "count(//table[@class=\"timeline\"]//tr[@class=\"batch\"])", true), "3");
  // Grid: one row per run, a coloured cell per step; the legend.
  const std::string grid = "//table[@class=\"grid\"]";
  EXPECT_EQ(Xpath(file, "count(" + grid + "//tr)", true), "5");
  EXPECT_EQ(Xpath(file, "count(" + grid + "//td[@class=\"step ok\"])", true), "3");
  EXPECT_EQ(Xpath(file, "count(" + grid + "//td[@class=\"step changed\"])", true), "1");
  EXPECT_EQ(Xpath(file, "count(" + grid + "//td[@class=\"step skipped\"])", true), "1");
  EXPECT_EQ(Xpath(file, "count(" + grid + "//td[@class=\"step failed\"])", true), "1");
  EXPECT_EQ(Xpath(file, "string(" + grid + "//td[@class=\"step failed\"]/@title)", true),
            FormatDuration(1250000) + ": " + kHostile);
  for (const char* cls : {"ok", "changed", "skipped", "failed"}) {
    EXPECT_THAT(*html, HasSubstr(absl::StrCat("<span class=\"", cls, "\">", cls, "</span>")));
    EXPECT_THAT(*html, HasSubstr(absl::StrCat(".", cls, "{")));  // styled
  }
  // Failures with their log, the hostile message escaped, plus the run-level failures.
  EXPECT_EQ(Xpath(file, "count(//div[@class=\"failure\"])", true), "3");
  EXPECT_THAT(*html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;dq&quot; "
                               "&#39;sq&#39;"));
  EXPECT_THAT(*html, Not(HasSubstr(kHostile)));
  EXPECT_THAT(Xpath(file, "string(//div[@class=\"failure\"][1]/pre)", true),
              HasSubstr("error line 12: unexpected '<' & '>'"));
  EXPECT_THAT(*html, HasSubstr("host unreachable"));
  EXPECT_THAT(*html, HasSubstr("agent restarted"));
  // File changes: path, action, short hashes.
  EXPECT_THAT(*html, HasSubstr("/opt/mi-4.2.0/conf/deployment.toml"));
  EXPECT_THAT(*html, HasSubstr("<code>0123456789ab</code>"));
  EXPECT_THAT(*html, HasSubstr("<code>fedcba987654</code>"));
  EXPECT_EQ(Xpath(file, "count(//table[@class=\"files\"]//tr)", true), "3");
}

}  // namespace
}  // namespace mimic::controller

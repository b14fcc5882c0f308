#include "controller/report/report.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "controller/report/report_formats.h"
#include "gtest/gtest.h"

namespace mimic::controller {
namespace {

namespace v1 = ::mimic::v1;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- A strict little JSON parser, to check that what the report writes is JSON ------------

struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  const Json& operator[](const std::string& key) const {
    static const Json kMissing;
    auto it = object.find(key);
    return it == object.end() ? kMissing : it->second;
  }
  const Json& operator[](size_t i) const { return array.at(i); }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view in) : in_(in) {}

  std::optional<Json> Parse() {
    Json v;
    if (!Value(v)) return std::nullopt;
    Space();
    if (pos_ != in_.size()) return std::nullopt;
    return v;
  }

 private:
  void Space() {
    while (pos_ < in_.size() &&
           std::string_view(" \t\r\n").find(in_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
  }
  bool Eat(std::string_view lit) {
    if (in_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  bool Hex4(unsigned& out) {
    if (pos_ + 4 > in_.size()) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = in_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9')
        out |= c - '0';
      else if (c >= 'a' && c <= 'f')
        out |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        out |= c - 'A' + 10;
      else
        return false;
    }
    return true;
  }
  static void AppendUtf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool String(std::string& out) {
    if (!Eat("\"")) return false;
    while (pos_ < in_.size()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;  // raw control characters are not allowed
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= in_.size()) return false;
      char e = in_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp;
          if (!Hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (!Eat("\\u") || !Hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }
  bool Value(Json& v) {
    Space();
    if (pos_ >= in_.size()) return false;
    char c = in_[pos_];
    if (c == '{') {
      ++pos_;
      v.type = Json::Type::kObject;
      Space();
      if (Eat("}")) return true;
      while (true) {
        Space();
        std::string key;
        if (!String(key)) return false;
        Space();
        if (!Eat(":")) return false;
        Json member;
        if (!Value(member)) return false;
        if (!v.object.emplace(key, std::move(member)).second) return false;  // duplicate key
        Space();
        if (Eat("}")) return true;
        if (!Eat(",")) return false;
      }
    }
    if (c == '[') {
      ++pos_;
      v.type = Json::Type::kArray;
      Space();
      if (Eat("]")) return true;
      while (true) {
        Json item;
        if (!Value(item)) return false;
        v.array.push_back(std::move(item));
        Space();
        if (Eat("]")) return true;
        if (!Eat(",")) return false;
      }
    }
    if (c == '"') {
      v.type = Json::Type::kString;
      return String(v.string);
    }
    if (Eat("true")) {
      v.type = Json::Type::kBool;
      v.boolean = true;
      return true;
    }
    if (Eat("false")) {
      v.type = Json::Type::kBool;
      return true;
    }
    if (Eat("null")) return true;
    size_t start = pos_;
    if (pos_ < in_.size() && in_[pos_] == '-') ++pos_;
    while (pos_ < in_.size() &&
           std::string_view("0123456789.eE+-").find(in_[pos_]) != std::string_view::npos) {
      ++pos_;
    }
    if (pos_ == start) return false;
    v.type = Json::Type::kNumber;
    v.number = std::stod(std::string(in_.substr(start, pos_ - start)));
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

std::optional<Json> ParseJson(std::string_view s) { return JsonParser(s).Parse(); }

// ---- JSON writer -------------------------------------------------------------------------

TEST(JsonQuoteTest, EscapesAndUtf8) {
  EXPECT_EQ(JsonQuote("plain"), "\"plain\"");
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("l1\nl2\tx\r\b\f"), "\"l1\\nl2\\tx\\r\\b\\f\"");
  EXPECT_EQ(JsonQuote(std::string("nul\0x\x01\x1f\x7f", 8)), "\"nul\\u0000x\\u0001\\u001f\x7f\"");
  // Valid UTF-8 passes through unchanged: 2, 3 and 4 byte sequences.
  EXPECT_EQ(JsonQuote("h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  const std::string kBad = "\xEF\xBF\xBD";
  EXPECT_EQ(JsonQuote("a\xFF"
                      "b"),
            "\"a" + kBad + "b\"");
  EXPECT_EQ(JsonQuote("\xE2\x82"), "\"" + kBad + kBad + "\"");             // truncated
  EXPECT_EQ(JsonQuote("\xC0\xAF"), "\"" + kBad + kBad + "\"");             // overlong '/'
  EXPECT_EQ(JsonQuote("\xED\xA0\x80"), "\"" + kBad + kBad + kBad + "\"");  // surrogate
  EXPECT_EQ(JsonQuote("\xF4\x90\x80\x80"), "\"" + kBad + kBad + kBad + kBad + "\"");  // > U+10FFFF

  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::optional<Json> parsed = ParseJson(JsonQuote(all));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->string.substr(0, 128), all.substr(0, 128));
}

TEST(JsonWriterTest, NestingAndEmptyContainers) {
  JsonWriter w;
  w.BeginObject();
  w.StringField("a", "x");
  w.Key("list");
  w.BeginArray();
  w.Int(-1);
  w.Uint(18446744073709551615u);
  w.Bool(false);
  w.Null();
  w.BeginObject();
  w.EndObject();
  w.EndArray();
  w.Key("empty");
  w.BeginArray();
  w.EndArray();
  w.TimeField("t", 1795300000123456);
  w.TimeField("none", 0);
  w.EndObject();
  EXPECT_EQ(w.str(),
            "{\n"
            "  \"a\": \"x\",\n"
            "  \"list\": [\n"
            "    -1,\n"
            "    18446744073709551615,\n"
            "    false,\n"
            "    null,\n"
            "    {}\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"t\": \"2026-11-21T22:26:40.123Z\",\n"
            "  \"none\": null\n"
            "}");
  EXPECT_TRUE(ParseJson(w.str()).has_value());
}

// ---- Text tables -------------------------------------------------------------------------

TEST(FormatTest, Durations) {
  EXPECT_EQ(FormatDuration(0), "0ms");
  EXPECT_EQ(FormatDuration(850000), "850ms");
  EXPECT_EQ(FormatDuration(12345678), "12.3s");
  EXPECT_EQ(FormatDuration(245000000), "4m05s");
  EXPECT_EQ(FormatDuration(3720000000), "1h02m");
  EXPECT_EQ(FormatDuration(-1), "-");
  EXPECT_EQ(FormatTimeUtc(0), "-");
  EXPECT_EQ(FormatTimeUtc(1795300000123456), "2026-11-21T22:26:40Z");
}

TEST(RecapTableTest, ColumnsAligned) {
  std::vector<HostRecap> rows = {
      {"mi-dev-1", "dev", "changed", 3, 5, 1, 0, 12, 65000000},
      {"mi-prod-blue-10", "prod", "failed", 10, 0, 0, 1, 0, 850000},
      {"mí-ü", "dev", "ok", 1, 0, 2, 0, 0, 0},
  };
  EXPECT_EQ(RecapTable(rows),
            "HOST             STAGE  STATUS   OK  CHANGED  SKIPPED  FAILED  FILES  DURATION\n"
            "mi-dev-1         dev    changed   3        5        1       0     12     1m05s\n"
            "mi-prod-blue-10  prod   failed   10        0        0       1      0     850ms\n"
            "mí-ü             dev    ok        1        0        2       0      0       0ms\n");
  EXPECT_EQ(RecapTable({}), "HOST  STAGE  STATUS  OK  CHANGED  SKIPPED  FAILED  FILES  DURATION\n");
}

TEST(RecapTableTest, HostRecapFromRun) {
  RunRecord run{.run_id = "r1", .host = "mi-1", .stage = "dev", .status = "changed"};
  std::vector<StepRecord> steps = {{"r1", 0, "preflight", "ok", "", 1000},
                                   {"r1", 1, "copy_carbonapps", "changed", "", 2000},
                                   {"r1", 2, "hl7_transport", "skipped", "", 3000}};
  std::vector<FileChangeRecord> files(3);
  HostRecap h = MakeHostRecap(run, steps, files);
  EXPECT_EQ(h.ok, 1);
  EXPECT_EQ(h.changed, 1);
  EXPECT_EQ(h.skipped, 1);
  EXPECT_EQ(h.failed, 0);
  EXPECT_EQ(h.files, 3);
  EXPECT_EQ(h.duration_us, 6000);  // no run times: the steps' sum
  run.started_at_us = 10;
  run.finished_at_us = 5000010;
  EXPECT_EQ(MakeHostRecap(run, steps, files).duration_us, 5000000);
}

TEST(StatusListingTest, Rollouts) {
  RolloutSummary a;
  a.rollout = {.id = "r-20261122-214640-ab12cd",
               .plan_sha256 = "0123456789abcdef0123",
               .os_user = "alice",
               .started_at_us = 1795300000000000,
               .status = "running"};
  a.hosts = 5;
  a.hosts_ok = 2;
  a.hosts_failed = 1;
  a.hosts_pending = 2;
  RolloutSummary b;
  b.rollout = {.id = "r-20261121-080000-000001",
               .check_mode = true,
               .started_at_us = 1795200000000000,
               .status = "ok"};
  b.hosts = 12;
  b.hosts_ok = 12;
  EXPECT_EQ(StatusListing({a, b}),
            "ID                        STARTED               OPERATOR  PLAN          MODE   "
            "HOSTS  OK  FAILED  PENDING  ROLLED_BACK  STATUS\n"
            "r-20261122-214640-ab12cd  2026-11-21T22:26:40Z  alice     0123456789ab  apply  "
            "    5   2       1        2            0  running\n"
            "r-20261121-080000-000001  2026-11-20T18:40:00Z  -         -             check  "
            "   12  12       0        0            0  ok\n");
}

TEST(StatusListingTest, OneRollout) {
  RolloutDetail d;
  d.rollout = {.id = "r-1",
               .plan_path = "plan.toml",
               .plan_sha256 = "abc",
               .inventory_path = "inv.toml",
               .os_user = "alice",
               .cert_subject = "CN=alice",
               .started_at_us = 1795300000000000,
               .status = "failed"};
  d.stages = {{"r-1", "prod", 1}, {"r-1", "dev", 0}};
  d.runs = {
      {.run_id = "run-p",
       .host = "mi-p",
       .stage = "prod",
       .batch_idx = 0,
       .mode = "apply",
       .status = "failed",
       .created_at_us = 3,
       .started_at_us = 1795300000000000,
       .finished_at_us = 1795300002000000,
       .last_seq = 7,
       .message = "merge failed\nmore",
       .source_version = "1.2.0",
       .target_version = "4.0.0"},
      {.run_id = "run-d1",
       .host = "mi-d",
       .stage = "dev",
       .batch_idx = 0,
       .mode = "apply",
       .status = "failed",
       .created_at_us = 1,
       .last_seq = 3},
      {.run_id = "run-d2",
       .host = "mi-d",
       .stage = "dev",
       .batch_idx = 0,
       .mode = "apply",
       .status = "running",
       .created_at_us = 2,
       .started_at_us = 1795300000000000,
       .last_seq = 4},
  };
  EXPECT_EQ(RolloutStatusText(d),
            "Rollout    r-1\n"
            "Status     failed\n"
            "Plan       plan.toml (sha256 abc)\n"
            "Inventory  inv.toml\n"
            "Scope      (not recorded)\n"
            "Operator   alice (CN=alice)\n"
            "Started    2026-11-21T22:26:40Z\n"
            "\n"
            "HOST  STAGE  BATCH  RUN     MODE   STATUS   SEQ  STARTED               DURATION  "
            "VERSIONS      MESSAGE\n"
            // Every run: the retried host's failed first run stays in view.
            "mi-d  dev        0  run-d1  apply  failed     3  -                            -  "
            "-\n"
            "mi-d  dev        0  run-d2  apply  running    4  2026-11-21T22:26:40Z         -  "
            "-\n"
            "mi-p  prod       0  run-p   apply  failed     7  2026-11-21T22:26:40Z      2.0s  "
            "1.2.0->4.0.0  merge failed\n");
  d.rollout.has_scope = true;
  d.rollout.scope.stage = "prod";
  d.rollout.scope.hosts = {"mi-p", "mi-q"};
  EXPECT_THAT(RolloutStatusText(d),
              HasSubstr("\nScope      stage prod, limit (all), hosts mi-p,mi-q\n"));
}

// ---- The JSON report, from a real audit --------------------------------------------------

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mimic-report-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    absl::StatusOr<std::unique_ptr<Audit>> a = Audit::Open(dir_ + "/audit.sqlite");
    ASSERT_TRUE(a.ok()) << a.status();
    audit_ = std::move(*a);
  }
  void TearDown() override {
    audit_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Append(const v1::Event& e) { ASSERT_TRUE(audit_->AppendEvent("r-1", e).ok()); }

  v1::Event Event(const std::string& run, const std::string& host, uint64_t seq) {
    v1::Event e;
    e.set_run_id(run);
    e.set_host(host);
    e.set_seq(seq);
    e.set_time_unix_micros(1795300000000000 + static_cast<int64_t>(seq) * 1000000);
    return e;
  }

  std::string dir_;
  std::unique_ptr<Audit> audit_;
};

TEST_F(ReportTest, JsonReportParsesAndHoldsNoSecret) {
  const std::string kSecret = "pa55-W0rd!";
  ASSERT_TRUE(audit_
                  ->BeginRollout({.id = "r-1",
                                  .plan_path = "/srv/plan.toml",
                                  .plan_sha256 = std::string(64, 'e'),
                                  .inventory_path = "/srv/inv.toml",
                                  .os_user = "alice",
                                  .started_at_us = 1795300000000000})
                  .ok());
  ASSERT_TRUE(audit_->RecordStage({"r-1", "dev", 0, "ok", 1795300000000000, 0}).ok());
  ASSERT_TRUE(audit_->RegisterRun("run-1", "r-1", "mi-1", "dev", 0, v1::MODE_APPLY).ok());
  ASSERT_TRUE(audit_->RegisterRun("run-2", "r-1", "mi-2", "dev", 0, v1::MODE_APPLY).ok());

  v1::Event e = Event("run-1", "mi-1", 1);
  e.mutable_run_started()->set_source_version("1.2.0");
  Append(e);
  e = Event("run-1", "mi-1", 2);
  v1::StepFinished* f = e.mutable_step_finished();
  f->set_step("merge_config");
  f->set_index(0);
  f->set_status(v1::STEP_CHANGED);
  f->set_message("quote \" backslash \\ tab \t bell \x07 caf\xC3\xA9");
  f->set_duration_micros(1500);
  v1::FileChange* fc = f->add_changes();
  fc->set_path("/opt/mi/conf/deployment.toml");
  fc->set_action(v1::ACTION_UPDATE);
  fc->set_size(2048);
  fc->set_sha256_before(std::string(64, '1'));
  fc->set_sha256_after(std::string(64, '2'));
  v1::ConfigChange* cc = f->add_config_changes();
  cc->set_file("conf/deployment.toml");
  cc->set_key("keystore.primary.password");
  cc->set_action("keep");
  cc->set_old_value("<redacted>");  // redacted by the agent, as it should be
  cc->set_new_value("<redacted>");
  cc->set_redacted(true);
  cc = f->add_config_changes();
  cc->set_file("conf/deployment.toml");
  cc->set_key("datasource[0].password");
  cc->set_action("add");
  cc->set_new_value(kSecret);  // slipped through: the audit redacts it again
  Append(e);
  e = Event("run-1", "mi-1", 3);
  e.mutable_run_finished()->set_status(v1::RUN_CHANGED);
  Append(e);
  e = Event("run-2", "mi-2", 1);
  e.mutable_run_started();
  Append(e);
  e = Event("run-2", "mi-2", 2);
  e.mutable_step_finished()->set_step("preflight");
  e.mutable_step_finished()->set_status(v1::STEP_FAILED);
  e.mutable_step_finished()->set_message("target MI is running");
  Append(e);
  e = Event("run-2", "mi-2", 3);
  e.mutable_run_finished()->set_status(v1::RUN_FAILED);
  Append(e);
  ASSERT_TRUE(audit_->FinishRollout("r-1", "failed", "1 host failed").ok());

  absl::StatusOr<std::string> text = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, Not(HasSubstr(kSecret)));
  std::optional<Json> json = ParseJson(*text);
  ASSERT_TRUE(json.has_value()) << *text;

  const Json& rollout = (*json)["rollout"];
  EXPECT_EQ(rollout["id"].string, "r-1");
  EXPECT_EQ(rollout["plan_sha256"].string, std::string(64, 'e'));
  EXPECT_EQ(rollout["operator"]["os_user"].string, "alice");
  EXPECT_EQ(rollout["started_at"].string, "2026-11-21T22:26:40.000Z");
  EXPECT_EQ(rollout["status"].string, "failed");
  EXPECT_FALSE(rollout["check_mode"].boolean);
  EXPECT_EQ(rollout["check_mode"].type, Json::Type::kBool);

  const Json& hosts = (*json)["hosts"];
  ASSERT_EQ(hosts.array.size(), 2u);
  EXPECT_EQ(hosts[0]["host"].string, "mi-1");
  EXPECT_EQ(hosts[0]["run_id"].string, "run-1");
  EXPECT_EQ(hosts[0]["status"].string, "changed");
  EXPECT_EQ(hosts[0]["stage"].string, "dev");
  EXPECT_EQ(hosts[0]["source_version"].string, "1.2.0");
  EXPECT_EQ(hosts[0]["started_at"].string, "2026-11-21T22:26:41.000Z");
  EXPECT_EQ(hosts[0]["duration_ms"].number, 2000);
  const Json& step = hosts[0]["steps"][0];
  EXPECT_EQ(step["name"].string, "merge_config");
  EXPECT_EQ(step["message"].string, "quote \" backslash \\ tab \t bell \x07 caf\xC3\xA9");
  EXPECT_EQ(step["duration_ms"].number, 2);  // 1.5 ms, rounded
  ASSERT_EQ(step["changes"].array.size(), 1u);
  EXPECT_EQ(step["changes"][0]["path"].string, "/opt/mi/conf/deployment.toml");
  EXPECT_EQ(step["changes"][0]["action"].string, "update");
  EXPECT_EQ(step["changes"][0]["size"].number, 2048);
  EXPECT_EQ(step["changes"][0]["sha256_before"].string, std::string(64, '1'));
  ASSERT_EQ(step["config_changes"].array.size(), 2u);
  EXPECT_EQ(step["config_changes"][1]["new_value"].string, "<redacted>");
  EXPECT_TRUE(step["config_changes"][1]["redacted"].boolean);
  EXPECT_EQ(hosts[0]["summary"]["changed"].number, 1);
  EXPECT_EQ(hosts[0]["summary"]["files"].number, 1);
  EXPECT_EQ(hosts[1]["status"].string, "failed");
  EXPECT_EQ(hosts[1]["steps"][0]["status"].string, "failed");

  const Json& summary = (*json)["summary"];
  EXPECT_EQ(summary["hosts"].number, 2);
  EXPECT_EQ(summary["hosts_ok"].number, 1);
  EXPECT_EQ(summary["hosts_failed"].number, 1);
  EXPECT_EQ(summary["steps_changed"].number, 1);
  EXPECT_EQ(summary["steps_failed"].number, 1);
  EXPECT_EQ(summary["config_changes"].number, 2);

  EXPECT_TRUE((*json)["audit"]["chain_ok"].boolean);
  EXPECT_EQ((*json)["audit"]["events"].number, 6);
  EXPECT_EQ((*json)["audit"]["chain_head"].string.size(), 64u);

  // The recap of the same rollout.
  absl::StatusOr<std::vector<HostRecap>> recap = BuildRecap(*audit_, "r-1");
  ASSERT_TRUE(recap.ok());
  EXPECT_EQ(RecapTable(*recap),
            "HOST  STAGE  STATUS   OK  CHANGED  SKIPPED  FAILED  FILES  DURATION\n"
            "mi-1  dev    changed   0        1        0       0      1      2.0s\n"
            "mi-2  dev    failed    0        0        0       1      0      2.0s\n");
}

// A forged row in a table the reports read (here a file's sha256) is not shown as if the
// audit were intact: the reports check the rollout against the signed ledger.
TEST_F(ReportTest, ReportsSayWhenATableWasTamperedWith) {
  ASSERT_TRUE(audit_->BeginRollout({.id = "r-1", .os_user = "alice"}).ok());
  v1::Event e = Event("run-1", "mi-1", 1);
  v1::StepFinished* f = e.mutable_step_finished();
  f->set_step("copy_keystores");
  f->set_status(v1::STEP_CHANGED);
  v1::FileChange* c = f->add_changes();
  c->set_path("/opt/mi/repository/resources/security/wso2carbon.jks");
  c->set_action(v1::ACTION_CREATE);
  c->set_sha256_after(std::string(64, 'a'));
  Append(e);
  absl::StatusOr<std::string> text = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(text.ok()) << text.status();
  std::optional<Json> json = JsonParser(*text).Parse();
  ASSERT_TRUE(json.has_value());
  EXPECT_TRUE((*json)["audit"]["verified"].boolean) << *text;

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/audit.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, ("UPDATE file_changes SET sha256_after = '" + std::string(64, 'f') +
                              "'").c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  text = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(text.ok()) << text.status();
  json = JsonParser(*text).Parse();
  ASSERT_TRUE(json.has_value());
  EXPECT_TRUE((*json)["audit"]["chain_ok"].boolean);  // the events are untouched...
  EXPECT_FALSE((*json)["audit"]["verified"].boolean);  // ...the table is not
  EXPECT_THAT((*json)["audit"]["verify_problem"].string, HasSubstr("file_changes"));
  absl::StatusOr<std::string> html = ReportHtml(*audit_, "r-1");
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("tampered"));
}

// After `mimic rollback`, status does not say ok for the host, keeps the apply run in view,
// and a rollback --check (a dry run) neither counts as the host's state nor hides it.
TEST_F(ReportTest, RolledBackHostsAreShownAsSuchWithTheRunTheyUndid) {
  ASSERT_TRUE(audit_->BeginRollout({.id = "r-1", .plan_sha256 = "abc", .status = "running"}).ok());
  ASSERT_TRUE(audit_->RecordStage({"r-1", "dev", 0, "ok", 1795300000000000, 0}).ok());
  auto run = [&](const std::string& id, const std::string& host, int batch, v1::Mode mode,
                 bool rollback_check, v1::RunStatus status) {
    ASSERT_TRUE(audit_->RegisterRun(id, "r-1", host, "dev", batch, mode, rollback_check).ok());
    v1::Event e = Event(id, host, 1);
    e.mutable_run_started()->mutable_plan()->set_mode(mode);
    e.mutable_run_started()->mutable_plan()->set_rollback_check(rollback_check);
    Append(e);
    e = Event(id, host, 2);
    e.mutable_run_finished()->set_status(status);
    Append(e);
  };
  run("r-1.a", "mi-a", 0, v1::MODE_APPLY, false, v1::RUN_CHANGED);
  run("r-1.b", "mi-b", 0, v1::MODE_APPLY, false, v1::RUN_CHANGED);
  run("r-1.a.rollback1", "mi-a", -1, v1::MODE_ROLLBACK, false, v1::RUN_CHANGED);
  run("r-1.b.rollback1-check", "mi-b", -1, v1::MODE_ROLLBACK, true, v1::RUN_CHANGED);
  ASSERT_TRUE(audit_->FinishRollout("r-1", "ok", "").ok());
  ASSERT_TRUE(audit_->Flush().ok());

  absl::StatusOr<std::vector<RolloutSummary>> list = audit_->ListRollouts(10);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].hosts, 2);
  EXPECT_EQ((*list)[0].hosts_ok, 1);  // mi-b: its dry rollback changed nothing
  EXPECT_EQ((*list)[0].hosts_rolled_back, 1);
  const std::string listing = StatusListing(*list);
  EXPECT_THAT(listing, HasSubstr("ROLLED_BACK  STATUS\n"));
  EXPECT_THAT(listing, HasSubstr("        0            1  ok, partly rolled back\n")) << listing;
  EXPECT_THAT(StatusListingJson(*list),
              HasSubstr("\"rolled_back\":1,\"status\":\"ok, partly rolled back\""));

  absl::StatusOr<RolloutDetail> d = audit_->GetRollout("r-1");
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string text = RolloutStatusText(*d);
  EXPECT_THAT(text, HasSubstr("Status     ok, partly rolled back (1 of 2 hosts rolled back)\n"));
  // Every run, the rollback under the apply run it undid.
  const size_t apply_a = text.find("r-1.a  "), back_a = text.find("r-1.a.rollback1 ");
  const size_t apply_b = text.find("r-1.b  "), dry_b = text.find("r-1.b.rollback1-check");
  ASSERT_NE(apply_a, std::string::npos) << text;
  ASSERT_NE(back_a, std::string::npos) << text;
  ASSERT_NE(apply_b, std::string::npos) << text;
  ASSERT_NE(dry_b, std::string::npos) << text;
  EXPECT_LT(apply_a, back_a);
  EXPECT_LT(back_a, apply_b);
  EXPECT_LT(apply_b, dry_b);
  EXPECT_THAT(text, HasSubstr("rollback        rolled back"));
  EXPECT_THAT(text, HasSubstr("rollback-check  changed (dry run)"));

  // The JSON report counts the host as rolled back, not ok; each run keeps its mode.
  absl::StatusOr<std::string> json_text = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(json_text.ok()) << json_text.status();
  std::optional<Json> json = ParseJson(*json_text);
  ASSERT_TRUE(json.has_value()) << *json_text;
  EXPECT_EQ((*json)["summary"]["hosts_ok"].number, 1);
  EXPECT_EQ((*json)["summary"]["hosts_rolled_back"].number, 1);
  EXPECT_THAT(*json_text, HasSubstr("\"mode\": \"rollback-check\""));

  // Rolled back everywhere: the rollout says so.
  run("r-1.b.rollback2", "mi-b", -1, v1::MODE_ROLLBACK, false, v1::RUN_OK);
  ASSERT_TRUE(audit_->Flush().ok());
  list = audit_->ListRollouts(10);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].hosts_ok, 0);
  EXPECT_EQ(RolloutStatusWord((*list)[0]), "rolled back");
}

// --diff: a change's diff is kept in the audit and every report format shows it.
TEST_F(ReportTest, DiffsAreStoredAndShownInEveryFormat) {
  ASSERT_TRUE(audit_->BeginRollout({.id = "r-1", .plan_sha256 = "abc", .status = "running"}).ok());
  ASSERT_TRUE(audit_->RecordStage({"r-1", "dev", 0, "ok", 1795300000000000, 0}).ok());
  ASSERT_TRUE(audit_->RegisterRun("run-1", "r-1", "mi-1", "dev", 0, v1::MODE_APPLY).ok());
  v1::Event e = Event("run-1", "mi-1", 1);
  e.mutable_run_started();
  Append(e);
  e = Event("run-1", "mi-1", 2);
  v1::StepFinished* f = e.mutable_step_finished();
  f->set_step("merge_config");
  f->set_status(v1::STEP_CHANGED);
  v1::FileChange* fc = f->add_changes();
  fc->set_path("/opt/mi/conf/deployment.toml");
  fc->set_action(v1::ACTION_UPDATE);
  fc->set_diff(
      "--- /opt/mi/conf/deployment.toml\n+++ /opt/mi/conf/deployment.toml\n@@ -1,2 +1,2 @@\n"
      "-hostname = \"old-host\"\n+hostname = \"new-host\"\n"
      "+password = \"Slipped-Pw-9\"\n");  // not redacted by the agent: the audit redacts again
  fc = f->add_changes();
  fc->set_path("/opt/mi/conf/plain.txt");
  fc->set_action(v1::ACTION_CREATE);
  Append(e);
  e = Event("run-1", "mi-1", 3);
  e.mutable_run_finished()->set_status(v1::RUN_CHANGED);
  Append(e);
  ASSERT_TRUE(audit_->Flush().ok());

  absl::StatusOr<std::vector<FileChangeRecord>> files = audit_->FileChanges("run-1");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_THAT((*files)[0].diff, HasSubstr("+hostname = \"new-host\"\n"));
  EXPECT_THAT((*files)[0].diff, HasSubstr("+password = \"<redacted>\""));
  EXPECT_EQ((*files)[1].diff, "");

  absl::StatusOr<std::string> json = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(json.ok()) << json.status();
  std::optional<Json> doc = ParseJson(*json);
  ASSERT_TRUE(doc.has_value()) << *json;
  const Json& changes = (*doc)["hosts"].array[0]["steps"].array[0]["changes"];
  ASSERT_EQ(changes.array.size(), 2u);
  EXPECT_THAT(changes.array[0]["diff"].string, HasSubstr("-hostname = \"old-host\"\n"));
  EXPECT_EQ(changes.array[1]["diff"].type, Json::Type::kNull);  // absent: no diff

  absl::StatusOr<std::string> junit = ReportJunit(*audit_, "r-1");
  ASSERT_TRUE(junit.ok()) << junit.status();
  EXPECT_THAT(*junit, HasSubstr("    +hostname = &quot;new-host&quot;\n"));
  absl::StatusOr<std::string> html = ReportHtml(*audit_, "r-1");
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("<span class=\"add\">+hostname = &quot;new-host&quot;</span>"));
  EXPECT_THAT(*html, HasSubstr("<span class=\"del\">-hostname = &quot;old-host&quot;</span>"));
  for (const std::string* out : {&*json, &*junit, &*html}) {
    EXPECT_THAT(*out, Not(HasSubstr("Slipped-Pw-9")));
  }

  // The stored diff is covered by the signed ledger: an edited one is found.
  EXPECT_TRUE((*doc)["audit"]["verified"].boolean) << *json;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/audit.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE file_diffs SET diff = '+hostname = \"forged\"\n'", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  json = ReportJson(*audit_, "r-1");
  ASSERT_TRUE(json.ok()) << json.status();
  doc = ParseJson(*json);
  ASSERT_TRUE(doc.has_value());
  EXPECT_FALSE((*doc)["audit"]["verified"].boolean) << *json;
  EXPECT_THAT((*doc)["audit"]["verify_problem"].string, HasSubstr("file_diffs"));
}

TEST_F(ReportTest, UnknownRollout) {
  EXPECT_EQ(ReportJson(*audit_, "r-none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(BuildRecap(*audit_, "r-none").status().code(), absl::StatusCode::kNotFound);
}

TEST(FormatTableTest, ACellIsOneLineWhateverItHolds) {
  const std::string t = FormatTable({"HOST", "MESSAGE"},
                                    {{"mi-p", "copied a\nmi-q  FAILED\r\x1B[1A"}}, {false, false});
  EXPECT_EQ(t, "HOST  MESSAGE\nmi-p  copied a\\nmi-q  FAILED\\r\\x1B[1A\n");
}

}  // namespace
}  // namespace mimic::controller

namespace mimic::controller {
namespace {

TEST(NextCommandsTest, NamesTheHostsAndTheCommands) {
  std::vector<HostRecap> rows(3);
  rows[0].host = "a";
  rows[0].status = "changed";
  rows[1].host = "b";
  rows[1].status = "failed";
  rows[2].host = "c";
  rows[2].status = "unreachable";
  EXPECT_EQ(HostsToRetry(rows), (std::vector<std::string>{"b", "c"}));
  std::string next = NextCommands("R1", rows, "/s/R1.retry", false);
  EXPECT_NE(next.find("not done: b, c (listed in /s/R1.retry)"), std::string::npos) << next;
  EXPECT_NE(next.find("mimic resume R1 "), std::string::npos) << next;
  EXPECT_NE(next.find("--limit @/s/R1.retry"), std::string::npos) << next;
  EXPECT_NE(next.find("mimic rollback R1 --limit @/s/R1.retry"), std::string::npos) << next;
  // A dry run has nothing to roll back.
  EXPECT_EQ(NextCommands("R1", rows, "/s/R1.retry", true).find("rollback"), std::string::npos);
  rows.resize(1);
  EXPECT_EQ(NextCommands("R1", rows, "/s/R1.retry", false), "");
}

}  // namespace
}  // namespace mimic::controller

namespace mimic::controller {
namespace {

TEST(StatusListingJsonTest, NumbersAreNumbersAndModeIsSaid) {
  RolloutSummary a;
  a.rollout = {.id = "r-1", .plan_sha256 = "abc", .os_user = "al\"ice", .check_mode = true,
               .started_at_us = 1795300000000000, .status = "ok"};
  a.hosts = 3;
  a.hosts_ok = 2;
  a.hosts_failed = 1;
  EXPECT_EQ(StatusListingJson({a}),
            "{\"schema_version\":1,\"rollouts\":[{\"id\":\"r-1\",\"started_at\":"
            "\"2026-11-21T22:26:40Z\",\"operator\":\"al\\\"ice\",\"plan_sha256\":\"abc\","
            "\"mode\":\"check\",\"hosts\":3,\"ok\":2,\"failed\":1,\"pending\":0,"
            "\"rolled_back\":0,\"status\":\"ok\"}]}\n");
  EXPECT_EQ(StatusListingJson({}), "{\"schema_version\":1,\"rollouts\":[]}\n");
}

}  // namespace
}  // namespace mimic::controller

// backup_databases: backs up every database the source MI uses, before anything touches them.
//
// Datasources come from the source's conf/deployment.toml ([[datasource]]); H2 files
// (*.mv.db, *.h2.db) under the source's repository/database are copied too. Per type:
//   h2                 file copy
//   postgresql         pg_dump --format=custom (PGPASSWORD in the child's environment)
//   mysql / mariadb    mysqldump --single-transaction --routines (MYSQL_PWD in the environment)
//   anything else      param command.<id>, run with /bin/sh -c after replacing {{host}}
//                      {{port}} {{database}} {{user}} {{out}} (shell-quoted); the password is in
//                      env MIMIC_DB_PASSWORD. Without it the step fails naming the datasource.
// Params: backup_dir (must pass the path guard; default <state_dir>/backups/<run_id>/),
// password.<id> (name of an environment variable holding the password, required when the toml
// has a $secret{} reference), command.<id>, timeout_seconds (per dump, default 3600).
// Check mode lists what would be dumped and runs nothing. Apply runs the dumps inside Plan()
// (like exec) and logs each backup's path, size and sha256. Passwords are never logged.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "agent/steps/db_discovery.h"
#include "agent/steps/steps.h"
#include "agent/steps/file_steps.h"
#include "common/base/fs.h"
#include "common/base/redact.h"
#include "common/base/status_macros.h"

namespace mimic::agent {
namespace {

namespace fs = std::filesystem;


struct Job {
  std::string label;  // "WSO2CarbonDB (postgresql, jdbc:postgresql://h:5432/db)"
  const Datasource* ds = nullptr;
  std::string h2_file;  // H2: the file to copy
  std::string out;      // backup file
};

std::string SafeName(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                                         c == '_' || c == '.'
                                     ? c
                                     : '_');
  return out;
}

class BackupDatabasesStep final : public Step {
 public:
  std::string name() const override { return "backup_databases"; }

  absl::StatusOr<StepPlan> Plan(StepContext& ctx) override {
    ASSIGN_OR_RETURN(Homes homes, ResolveHomes(ctx));
    ASSIGN_OR_RETURN(std::string toml_path, ctx.guard->ResolveUnder(homes.source,
                                                                    "conf/deployment.toml"));
    ASSIGN_OR_RETURN(std::string text, common::ReadFile(toml_path));
    ASSIGN_OR_RETURN(DbDiscovery disc, DiscoverDatabases(text, toml_path, homes.source));

    ASSIGN_OR_RETURN(const int64_t timeout, ctx.IntParam("timeout_seconds"));
    ASSIGN_OR_RETURN(std::string dir, ctx.StringParam("backup_dir"));
    if (!dir.empty()) {
      absl::StatusOr<std::string> r = ctx.guard->Resolve(dir);
      if (!r.ok()) {
        return common::Annotate(r.status(), "backup_databases: backup_dir");
      }
      dir = *r;
    } else {
      if (ctx.state_dir.empty()) {
        return absl::FailedPreconditionError("backup_databases: no state dir and no backup_dir");
      }
      const std::string run_id = ctx.plan != nullptr && !ctx.plan->run_id().empty()
                                     ? ctx.plan->run_id()
                                     : fs::path(ctx.run_dir).filename().string();
      dir = absl::StrCat(ctx.state_dir, "/backups/", SafeName(run_id));
    }

    // The jobs, with every problem found before anything runs (check mode fails the same way).
    std::vector<Job> jobs;
    std::vector<std::string> h2_seen;
    for (const Datasource& ds : disc.datasources) {
      Job job;
      job.ds = &ds;
      job.label = absl::StrCat(ds.id, " (", DbTypeName(ds.type), ", ", RedactJdbcUrl(ds.url), ")");
      const std::string base = absl::StrCat(dir, "/", SafeName(ds.id));
      switch (ds.type) {
        case DbType::kH2:
          for (const char* ext : {".mv.db", ".h2.db"}) {
            const std::string f = absl::StrCat(ds.database, ext);
            if (common::PathExists(f)) {
              Job j = job;
              ASSIGN_OR_RETURN(j.h2_file, ctx.guard->Resolve(f));
              j.out = absl::StrCat(base, ".", fs::path(f).filename().string());
              h2_seen.push_back(j.h2_file);
              jobs.push_back(j);
            }
          }
          if (jobs.empty() || jobs.back().ds != &ds) {
            StepLog(ctx, LogLevel::kWarning,
                    absl::StrCat(job.label, ": no H2 file ", ds.database, ".mv.db/.h2.db; skipped"));
          }
          continue;
        case DbType::kPostgresql:
          job.out = base + ".pgdump";
          break;
        case DbType::kMysql:
        case DbType::kMariadb:
          job.out = base + ".sql";
          break;
        default:
          if (ctx.Param(absl::StrCat("command.", ds.id)).empty()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "backup_databases: datasource ", job.label, ": mimic cannot dump a ",
                DbTypeName(ds.type), " database itself; set param command.", ds.id,
                " to a dump command (placeholders {{host}} {{port}} {{database}} {{user}} "
                "{{out}}; the password is in env MIMIC_DB_PASSWORD)"));
          }
          job.out = base + ".backup";
      }
      RETURN_IF_ERROR(ResolvePassword(ctx, ds).status());
      jobs.push_back(job);
    }
    ASSIGN_OR_RETURN(std::vector<std::string> files,
                     ListConfinedFiles(ctx, homes.source, "repository/database"));
    for (const std::string& rel : files) {
      if (!absl::EndsWith(rel, ".mv.db") && !absl::EndsWith(rel, ".h2.db")) continue;
      const std::string abs = absl::StrCat(homes.source, "/", rel);
      if (std::find(h2_seen.begin(), h2_seen.end(), abs) != h2_seen.end()) continue;
      Job j;
      j.label = absl::StrCat(rel, " (h2 file)");
      j.h2_file = abs;
      j.out = absl::StrCat(dir, "/h2.", SafeName(fs::path(rel).filename().string()));
      jobs.push_back(j);
    }

    StepPlan plan;
    if (jobs.empty()) {
      plan.forced_status = mimic::v1::STEP_SKIPPED;
      plan.message = "no database to back up (no [[datasource]] and no H2 file)";
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }
    if (ctx.check) {
      for (const Job& j : jobs) {
        StepLog(ctx, LogLevel::kInfo, absl::StrCat("would back up ", j.label, " to ", j.out));
      }
      plan.forced_status = mimic::v1::STEP_CHANGED;
      plan.message = absl::StrCat("would back up ", Count(jobs.size(), "database"), " into ", dir);
      StepLog(ctx, LogLevel::kInfo, plan.message);
      return plan;
    }

    RETURN_IF_ERROR(common::MakeDirs(dir, 0700));
    uint64_t total = 0;
    for (const Job& j : jobs) {
      StepLog(ctx, LogLevel::kInfo, absl::StrCat("backing up ", j.label));
      const std::string tmp = j.out + ".part";
      RETURN_IF_ERROR(RunJob(ctx, j, tmp, timeout));
      std::error_code ec;
      fs::rename(tmp, j.out, ec);
      if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
      ::chmod(j.out.c_str(), 0600);
      ASSIGN_OR_RETURN(std::string sha, common::Sha256File(j.out));
      const uint64_t size = fs::file_size(j.out, ec);
      total += size;
      plan.facts[absl::StrCat("backup.", j.ds != nullptr ? j.ds->id : j.out)] = j.out;
      StepLog(ctx, LogLevel::kInfo,
              absl::StrCat("backup ", j.out, " size ", size, " sha256 ", sha));
    }
    plan.forced_status = mimic::v1::STEP_CHANGED;
    plan.message = absl::StrCat("backed up ", Count(jobs.size(), "database"), " into ", dir, " (",
                                total, " bytes)");
    StepLog(ctx, LogLevel::kInfo, plan.message);
    return plan;
  }

 private:
  static absl::Status RunJob(const StepContext& ctx, const Job& j, const std::string& out,
                             int timeout) {
    if (!j.h2_file.empty()) {
      StepLog(ctx, LogLevel::kWarning,
              "copying an H2 file: the MI using it must be stopped for a consistent copy");
      std::error_code ec;
      fs::copy_file(j.h2_file, out, fs::copy_options::overwrite_existing, ec);
      if (ec) return absl::InternalError(absl::StrCat("copy ", j.h2_file, ": ", ec.message()));
      return absl::OkStatus();
    }
    const Datasource& ds = *j.ds;
    ASSIGN_OR_RETURN(std::string pw, ResolvePassword(ctx, ds));
    std::vector<std::string> argv, env;
    std::string stdout_path;
    const std::string port = std::to_string(ds.port);
    if (ds.type == DbType::kPostgresql) {
      argv = {"pg_dump", "--format=custom", "--no-password", "-h", ds.host, "-p", port,
              "-U", ds.username, "-f", out, ds.database};
      env = {absl::StrCat("PGPASSWORD=", pw)};
    } else if (ds.type == DbType::kMysql || ds.type == DbType::kMariadb) {
      argv = {"mysqldump", "--single-transaction", "--routines", "--protocol=TCP",
              "-h", ds.host, "-P", port, "-u", ds.username, ds.database};
      env = {absl::StrCat("MYSQL_PWD=", pw)};
      stdout_path = out;
    } else {
      const std::string cmd = absl::StrReplaceAll(
          ctx.Param(absl::StrCat("command.", ds.id)),
          {{"{{host}}", ShellQuote(ds.host)}, {"{{port}}", port},
           {"{{database}}", ShellQuote(ds.database)}, {"{{user}}", ShellQuote(ds.username)},
           {"{{out}}", ShellQuote(out)}});
      StepLog(ctx, LogLevel::kInfo, absl::StrCat("running: ", common::RedactText(cmd)));
      argv = {"/bin/sh", "-c", cmd};
      env = {absl::StrCat("MIMIC_DB_PASSWORD=", pw)};
    }
    ASSIGN_OR_RETURN(ProcResult r, RunProcess(argv, env, "", stdout_path, timeout, ctx.cancel));
    if (r.exit_code != 0) {
      std::error_code ec;
      fs::remove(out, ec);
      return absl::AbortedError(absl::StrCat("backup_databases: ", argv[0] == "/bin/sh"
                                                                       ? "command." + ds.id
                                                                       : argv[0],
                                             " for datasource ", j.label, " failed: ",
                                             DescribeFailure(r)));
    }
    if (!common::PathExists(out)) {
      return absl::AbortedError(absl::StrCat("backup_databases: datasource ", j.label,
                                             ": the dump command wrote no file ", out));
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Step> NewBackupDatabasesStep() { return std::make_unique<BackupDatabasesStep>(); }

}  // namespace mimic::agent

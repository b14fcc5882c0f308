// merge_config's core on the largest input it can meet: a source deployment.toml that sets every
// key of MI 4.2.0's full key catalogue (deployment-full.toml), merged 4.0.0 -> 4.2.0 into the
// shipped 4.2.0 deployment.toml. Prints the median and worst of `runs` merges (wall time, and
// the process's CPU time, which a loaded machine does not inflate) and, last, one line of
// key=value figures.
//
// Usage: merge-bench [CATALOGUE [RUNS]]
//   CATALOGUE defaults to <fixtures>/mi/4.2.0/repository/resources/conf/deployment-full.toml
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/fs.h"
#include "common/mi/shipped_defaults.h"
#include "common/mi/toml_merge.h"

// The catalogue lists some keys twice in one table (alternatives, e.g. [[transport.modules]]
// ref = "addressing" then ref = "another") and some tables twice: keeps the first of each, so
// the text is valid TOML.
std::string FirstOfEachKey(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  std::set<std::string> seen, tables;
  bool skipping = false;  // inside a [table] the catalogue already opened: dropped
  while (std::getline(in, line)) {
    const size_t b = line.find_first_not_of(" \t");
    if (b != std::string::npos && line[b] == '[') {
      seen.clear();
      const std::string header = line.substr(b, line.find(']', b) - b);
      skipping = header.rfind("[[", 0) != 0 && !tables.insert(header).second;
      if (skipping) continue;
    } else if (skipping) {
      continue;
    } else if (b != std::string::npos && line[b] != '#') {
      const size_t eq = line.find('=');
      if (eq != std::string::npos) {
        std::string key = line.substr(b, eq - b);
        key.erase(key.find_last_not_of(" \t") + 1);
        if (!seen.insert(key).second) continue;
      }
    }
    out += line;
    out += '\n';
  }
  return out;
}

int main(int argc, char** argv) {
  const std::string catalogue =
      argc > 1 ? argv[1]
               : std::string(MIMIC_FIXTURES_DIR) +
                     "/mi/4.2.0/repository/resources/conf/deployment-full.toml";
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 50;
  absl::StatusOr<std::string> source = mimic::common::ReadFile(catalogue);
  if (!source.ok()) {
    std::fprintf(stderr, "merge-bench: %s (pass the catalogue's path)\n",
                 std::string(source.status().message()).c_str());
    return 1;
  }
  *source = FirstOfEachKey(*source);
  const std::string* target = mimic::common::ShippedDeploymentToml("4.2.0");
  if (target == nullptr) {
    std::fprintf(stderr, "merge-bench: no shipped 4.2.0 deployment.toml\n");
    return 1;
  }
  mimic::common::MergeOptions o;
  o.from_version = "4.0.0";
  o.to_version = "4.2.0";
  o.target_default_text = *target;
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  std::vector<double> ms, cpu_ms;
  size_t changes = 0;
  for (int i = 0; i < runs; ++i) {
    const double c0 = cpu_now();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = mimic::common::MergeDeploymentToml(*source, "deployment-full.toml", *target,
                                                "deployment.toml", o);
    const auto t1 = std::chrono::steady_clock::now();
    cpu_ms.push_back(cpu_now() - c0);
    if (!r.ok()) {
      std::fprintf(stderr, "merge-bench: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    changes = r->changes.size();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu_ms.begin(), cpu_ms.end());
  const double median = ms[ms.size() / 2], worst = ms.back();
  const double cpu_median = cpu_ms[cpu_ms.size() / 2];
  std::printf(
      "| source keys (changes reported) | source bytes | median | worst | CPU median | runs |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  std::printf("| %zu | %zu | %.2f ms | %.2f ms | %.2f ms | %d |\n", changes, source->size(), median,
              worst, cpu_median, runs);
  std::printf(
      "merge_changes=%zu merge_median_ms=%.3f merge_worst_ms=%.3f merge_cpu_median_ms=%.3f "
      "runs=%d\n",
      changes, median, worst, cpu_median, runs);
  return 0;
}

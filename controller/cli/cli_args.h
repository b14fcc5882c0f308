// The `mimic` command line: the commands, the flags each accepts, their help, and the parser
// that turns argv into one command and its CommandOptions. A flag a command does not take is an
// error (never silently ignored); `mimic COMMAND --help` prints that command's help.
#ifndef MIMIC_CONTROLLER_CLI_CLI_ARGS_H_
#define MIMIC_CONTROLLER_CLI_CLI_ARGS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/cli/commands.h"

namespace mimic::controller {

struct CommandSpec {
  std::string name;                // "run", "audit verify", "inventory list"
  std::string synopsis;            // what follows "mimic NAME" in the usage
  std::string summary;             // what it does, a few lines
  std::vector<std::string> flags;  // the flags it accepts
};

// Every command, in the order the usage lists them.
const std::vector<CommandSpec>& Commands();

struct ParsedCommandLine {
  const CommandSpec* command = nullptr;  // null for --help / --version alone
  CommandOptions options;
  bool help = false;     // print the help (of `command`, or the overall usage when null)
  bool version = false;  // print the version
};

// Parses argv (without the program name). `getenv` supplies MIMIC_INVENTORY, MIMIC_AUDIT and the
// settings file lookup (common/config/controller_config.h): flags win over the environment, which
// wins over the settings file. INVALID_ARGUMENT with a message for the operator (unknown
// command, a flag the command does not take, a missing or bad value).
absl::StatusOr<ParsedCommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::function<const char*(const char*)>& getenv);

// The overall usage (`mimic --help`) and one command's help (`mimic run --help`).
std::string Usage();
std::string CommandHelp(const CommandSpec& command);

}  // namespace mimic::controller

#endif  // MIMIC_CONTROLLER_CLI_CLI_ARGS_H_

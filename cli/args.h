// A small flag parser for augur's subcommands. Each subcommand declares its flags (name,
// default, help) in one place; the same table drives parsing, validation and --help.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur::cli {

class Args {
 public:
  // `usage` is e.g. "augur train --data FILE.h5 --config PRESET|FILE.json --out DIR".
  Args(std::string command, std::string summary, std::string usage);

  // Declarations. `value_name` shows in --help ("N", "PATH"). A flag with required=true
  // and no value given is an error. repeated: may be given several times (and a single
  // --input may be followed by several values up to the next --flag).
  Args& flag(const std::string& name, const std::string& value_name, const std::string& help,
             const std::string& default_value = "", bool required = false, bool repeated = false);
  Args& toggle(const std::string& name, const std::string& help);  // boolean, no value
  Args& note(const std::string& text);                            // extra --help paragraph

  // Parses argv after the subcommand words. Returns an error naming the flag on unknown
  // flags, missing values, or missing required flags. `help_requested()` is true after
  // --help / -h (no other checks are made then).
  absl::Status parse(int argc, char** argv, int first);
  bool help_requested() const { return help_; }
  std::string help() const;

  bool has(const std::string& name) const;  // given on the command line
  std::string str(const std::string& name) const;
  std::vector<std::string> list(const std::string& name) const;
  absl::StatusOr<int64_t> i64(const std::string& name) const;
  absl::StatusOr<double> f64(const std::string& name) const;
  bool on(const std::string& name) const;  // toggles
  // The full command line, for provenance.
  const std::string& command_line() const { return command_line_; }

 private:
  struct Spec {
    std::string name, value_name, help, def;
    bool required = false, repeated = false, is_toggle = false;
  };
  const Spec* find(const std::string& name) const;
  std::string command_, summary_, usage_;
  std::vector<Spec> specs_;
  std::vector<std::string> notes_;
  std::map<std::string, std::vector<std::string>> values_;
  bool help_ = false;
  std::string command_line_;
};

// Prints "augur <cmd>: <message>" to stderr and returns 1 (or 0 for OK).
int Fail(const std::string& command, const absl::Status& st);

}  // namespace augur::cli

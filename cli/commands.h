// One entry point per subcommand; cli/main.cc dispatches on the subcommand words.
// Each returns the process exit code and handles its own --help.
#pragma once

namespace augur::cli {

int RunDataTokenizer(int argc, char** argv, int first);  // augur data tokenizer
int RunDataBuild(int argc, char** argv, int first);      // augur data build
int RunTrain(int argc, char** argv, int first);          // augur train
int RunGenerate(int argc, char** argv, int first);       // augur generate
int RunInfo(int argc, char** argv, int first);           // augur info (model / store / devices)
int RunDataEncode(int argc, char** argv, int first);     // augur data encode

}  // namespace augur::cli

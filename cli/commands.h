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
int RunDatastoreBuild(int argc, char** argv, int first); // augur data datastore (cmd_datastore.cc)
int RunDistillGen(int argc, char** argv, int first);     // augur distill gen  (cmd_distill_gen.cc)
int RunDistillAr(int argc, char** argv, int first);      // augur distill ar   (cmd_distill_ar.cc)
int RunDistillNat(int argc, char** argv, int first);     // augur distill nat  (cmd_distill_nat.cc)
int RunDistillEagle(int argc, char** argv, int first);   // augur distill eagle (cmd_distill_eagle.cc)
int RunQuantize(int argc, char** argv, int first);       // augur quantize     (cmd_quantize.cc)
int RunExport(int argc, char** argv, int first);         // augur export       (cmd_export.cc)
int RunImport(int argc, char** argv, int first);         // augur import       (cmd_import.cc)
int RunEval(int argc, char** argv, int first);           // augur eval         (cmd_eval.cc)
int RunBench(int argc, char** argv, int first);          // augur bench        (cmd_eval.cc)

}  // namespace augur::cli
